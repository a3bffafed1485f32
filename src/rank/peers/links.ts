// The bookkeeping of a rank's links: one per peer, its socket once usable (or our
// connection on its way), what waits for it, whether it closed or failed, and every
// connection we hold.
import type { Socket } from 'node:net';
import { CkptError, ErrorCodes, errnoCode } from '../../errors.js';
import type { PeerNetworkOptions } from './options.js';
import { quietly } from './sockets.js';

/** The connection with one peer, used both ways. */
export interface Link {
  /** Set once usable: when the peer acknowledged our hello, or when we accepted its hello. */
  socket?: Socket;
  /** Our connection to the peer, until it answers our hello (dial.ts). */
  dialing?: Socket;
  /** Frames written before the peer's connection arrived, in order. */
  queue: Buffer[];
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
  timer?: NodeJS.Timeout;
  /** Nothing more may be written: the peer ended its side (so we ended ours), we ended, or the socket closed. */
  closed: boolean;
  error?: CkptError;
}

export class LinkTable {
  readonly links: Link[];
  /** Ranks whose stream to us has ended. */
  readonly ended: boolean[];
  /** Connections accepted and not yet closed (before and after their hello). */
  readonly accepted = new Set<Socket>();

  /** Resolved when no connection of ours is on its way any more. */
  private dialsDone: { resolve: () => void }[] = [];

  /** `onAttached(peer)`: a link got its socket; what waited for it may go out now. `onDialEnded`: a connection of ours was answered or failed. */
  constructor(
    private readonly o: PeerNetworkOptions,
    private readonly onAttached: (peer: number) => void,
    private readonly onDialEnded: () => void = () => {},
  ) {
    this.links = Array.from({ length: o.size }, () => ({ queue: [], waiters: [], closed: false }));
    this.ended = new Array(o.size).fill(false);
  }

  /** No connection of ours is on its way (each was answered, or failed). */
  get linked(): boolean {
    return this.links.every((l) => l.dialing === undefined);
  }

  /** Resolves once `linked` holds. */
  whenLinked(): Promise<void> {
    if (this.linked) return Promise.resolve();
    return new Promise((resolve) => this.dialsDone.push({ resolve }));
  }

  /** Our connection to `peer` on its way is given up (closed quietly). */
  dropDial(peer: number): void {
    const dialing = this.links[peer]!.dialing;
    if (!dialing) return;
    quietly(dialing);
    this.dialEnded(peer, dialing);
  }

  /** Our connection `socket` to `peer` was answered or failed: it is on its way no more. */
  dialEnded(peer: number, socket: Socket): void {
    const link = this.links[peer]!;
    if (link.dialing !== socket) return;
    link.dialing = undefined;
    if (this.linked) for (const w of this.dialsDone.splice(0)) w.resolve();
    this.onDialEnded();
  }

  /** Forgets a closed link (its socket closed quietly), ready to be made again. */
  reset(r: number): void {
    const link = this.links[r]!;
    if (link.timer) clearTimeout(link.timer);
    link.timer = undefined;
    if (link.socket) this.accepted.delete(link.socket);
    quietly(link.socket);
    link.socket = undefined;
    this.dropDial(r);
    link.closed = false;
    link.error = undefined;
    this.ended[r] = false;
  }

  /** `socket` is now the link with `peer`: watch it, then let what waited for it go. */
  attach(peer: number, socket: Socket, failed: () => boolean): void {
    const link = this.links[peer]!;
    link.socket = socket;
    socket.on('error', (err) => {
      if (failed()) return;
      link.error ??= this.errorOf(link, peer, err);
      const code = errnoCode(err);
      // A reset: the peer is gone (it exited with our bytes unread); 'close' says so.
      if (code === 'ECONNRESET' || code === 'EPIPE') return;
      this.o.onFatal(new CkptError(ErrorCodes.JOB_ABORTED, `lost the connection with rank ${peer}: ${code ?? err.message}`, { cause: err }));
    });
    socket.on('end', () => {
      // The peer sent everything it will: it finalized or exited. It reads nothing
      // more either, so our side ends too.
      link.closed = true;
      if (!socket.writableEnded) socket.end();
      this.peerEnded(peer);
    });
    socket.on('close', () => {
      link.closed = true;
      this.peerEnded(peer);
    });
    if (link.timer) clearTimeout(link.timer);
    link.timer = undefined;
    this.onAttached(peer);
  }

  /** The error a broken link reports: the first one it had, or this one. */
  errorOf(link: Link, dest: number, err: Error): CkptError {
    return (
      link.error ??
      new CkptError(ErrorCodes.JOB_ABORTED, `lost the connection to rank ${dest}: ${errnoCode(err) ?? err.message}`, {
        cause: err,
        details: { rank: dest },
      })
    );
  }

  /** The link can never carry anything: its waiting sends fail, and (`fatal`) so does the communicator. */
  fail(link: Link, err: CkptError, fatal = true): void {
    if (fatal) link.error ??= err;
    if (link.timer) clearTimeout(link.timer);
    link.timer = undefined;
    for (const w of link.waiters.splice(0)) w.reject(err);
    link.queue = [];
    if (fatal) this.o.onFatal(err);
  }

  /**
   * Flushes and half-closes every link: each peer reads our last message, then
   * end-of-file ("nothing more from this rank"), and ends its side in turn (its
   * later sends to us fail). Resolves when every link has closed both ways.
   */
  async closeOutgoing(timeoutMs: number): Promise<void> {
    // A connection on its way may yet carry what was sent last.
    if (!this.linked) await Promise.race([this.whenLinked(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    const ends = this.links.map((link) => {
      const socket = link.socket;
      link.closed = true;
      if (!socket || socket.destroyed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socket.destroy();
          resolve();
        }, timeoutMs);
        timer.unref();
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        // Half-close: our messages end here; we read on until the peer ends its side.
        if (!socket.writableEnded) socket.end();
      });
    });
    await Promise.all(ends);
  }

  /** What was handed to each link's socket has left our buffers (or `timeoutMs` passed). */
  async drainAll(timeoutMs: number): Promise<void> {
    await Promise.all(
      this.links.map((link) => {
        const socket = link.socket;
        if (!socket || socket.writableLength === 0 || socket.destroyed) return undefined;
        return new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          socket.once('drain', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }),
    );
  }

  /** Closes every link and every accepted connection quietly: nothing is reported gone or failed. */
  resetAll(): void {
    this.links.forEach((_, r) => this.reset(r));
    for (const s of this.accepted) quietly(s);
    this.accepted.clear();
  }

  /** Destroys every socket at once (the communicator is done). */
  destroyAll(): void {
    for (const link of this.links) {
      if (link.timer) clearTimeout(link.timer);
      link.socket?.destroy();
      link.dialing?.destroy();
    }
    for (const s of this.accepted) s.destroy();
  }

  private peerEnded(peer: number): void {
    if (this.ended[peer]) return;
    this.ended[peer] = true;
    this.o.onPeerEnd(peer);
  }
}
