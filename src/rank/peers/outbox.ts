// Writing frames to the peers: straight to a link's socket, queued until its
// connection arrives, or held in memory while a checkpoint drains the links.
import { CkptError, ErrorCodes } from '../../errors.js';
import { encodeFrame, encodeHeader, type FrameKind } from '../../wire/frame.js';
import type { Link, LinkTable } from './links.js';
import type { PeerNetworkOptions } from './options.js';

/**
 * Payloads up to this size are copied behind the header and written at once; bigger
 * ones go out without a copy (header and payload in one writev), and send() resolves
 * when the kernel has them. Copying and allocating 64 KiB per message cost about
 * 40% of the streaming bandwidth at 32-64 KiB; below 8 KiB the copy is cheaper.
 */
const COPY_LIMIT = 8 * 1024;

export class Outbox {
  /**
   * Frames handed to each peer's socket: the drain step of a checkpoint waits
   * until read[i] on j equals written[j] on i.
   */
  readonly written: number[];
  /** While a checkpoint drains, new frames are held back here, per destination. */
  private held: Buffer[][] | undefined;

  /** `connect(dest)`: the link with `dest` is wanted (a frame waits for it); connects unless under way. */
  constructor(
    private readonly o: PeerNetworkOptions,
    private readonly table: LinkTable,
    private readonly connect: (dest: number) => void,
  ) {
    this.written = new Array(o.size).fill(0);
  }

  /** Holds every later send in memory (a checkpoint is draining the links). */
  pause(): void {
    this.held ??= Array.from({ length: this.o.size }, () => []);
  }

  /** Sends what was held back, in order, and lets sends through again. */
  resume(): void {
    const held = this.held;
    this.held = undefined;
    if (!held) return;
    held.forEach((frames, dest) => frames.forEach((f) => this.writeFrame(dest, f)));
  }

  /** Frames not yet handed to a socket (held or waiting for a link): saved with a self checkpoint. */
  unsent(): { dest: number; frame: Buffer }[] {
    const out: { dest: number; frame: Buffer }[] = [];
    this.table.links.forEach((link, dest) => link.queue.forEach((frame) => out.push({ dest, frame })));
    this.held?.forEach((frames, dest) => frames.forEach((frame) => out.push({ dest, frame })));
    return out;
  }

  /** Queues an already encoded frame (a restarted rank re-sends what it had not sent). */
  writeFrame(dest: number, frame: Buffer): void {
    const link = this.table.links[dest]!;
    if (this.held) {
      this.held[dest]!.push(frame);
    } else if (link.socket) {
      // A peer that ended its side reads nothing more: the frame is dropped, as its later sends fail.
      if (link.closed) return;
      link.socket.write(frame);
      this.written[dest]!++;
    } else {
      link.queue.push(frame);
      this.connect(dest);
    }
  }

  /**
   * Queues one message to `dest`. Returns undefined when the caller may reuse its
   * buffer at once (small payloads are copied), else a promise for when the bytes
   * are with the kernel or the socket has room again.
   */
  send(dest: number, kind: FrameKind, tag: number, payload: Uint8Array): Promise<void> | undefined {
    const link = this.table.links[dest]!;
    if (link.error) throw link.error;
    if (this.held) {
      // A checkpoint holds sends: the frame waits in memory (a copy: the caller may
      // reuse its buffer). Also when the link closed: under a criu checkpoint that
      // peer went down for its dump, and the link is made again before the resume.
      this.held[dest]!.push(encodeFrame(kind, tag, payload));
      return undefined;
    }
    if (link.closed) {
      throw new CkptError(ErrorCodes.JOB_ABORTED, `rank ${dest} has closed its connection (it finalized or exited)`, { details: { rank: dest } });
    }
    const socket = link.socket;
    if (!socket) {
      // No link yet: it is made now (or is on its way), and the frame waits for it.
      link.queue.push(encodeFrame(kind, tag, payload));
      link.timer ??= setTimeout(() => {
        this.table.fail(link, new CkptError(ErrorCodes.TIMEOUT, `timed out after ${this.o.linkTimeoutMs} ms waiting for a link between rank ${this.o.rank} and rank ${dest}`));
      }, this.o.linkTimeoutMs).unref();
      this.connect(dest);
      return new Promise((resolve, reject) => link.waiters.push({ resolve, reject }));
    }
    this.written[dest]!++;
    if (payload.byteLength <= COPY_LIMIT) {
      if (socket.write(encodeFrame(kind, tag, payload))) return undefined;
      return this.drained(link, dest);
    }
    // Large payload: header and payload go out together (writev) without copying
    // the payload; the caller's buffer stays in use until the kernel has it.
    socket.cork();
    socket.write(encodeHeader(kind, tag, payload.byteLength));
    const written = new Promise<void>((resolve, reject) =>
      socket.write(payload, (err) => (err ? reject(this.table.errorOf(link, dest, err)) : resolve())),
    );
    socket.uncork();
    return written;
  }

  /** The link with `peer` just got its socket: what was queued for it goes out (or on hold). */
  flushQueued(peer: number): void {
    const link = this.table.links[peer]!;
    const socket = link.socket!;
    const queued = link.queue;
    link.queue = [];
    if (this.held) {
      // A checkpoint is draining: what waited for this link waits on, in memory
      // (written now, it would cross the checkpoint's cut uncounted).
      this.held[peer]!.unshift(...queued);
      for (const w of link.waiters.splice(0)) w.resolve();
      return;
    }
    let ok = true;
    for (const frame of queued) {
      ok = socket.write(frame);
      this.written[peer]!++;
    }
    const waiters = link.waiters.splice(0);
    if (ok) for (const w of waiters) w.resolve();
    else this.drained(link, peer).then(() => waiters.forEach((w) => w.resolve()), (e: Error) => waiters.forEach((w) => w.reject(e)));
  }

  /** Resolves when the link's socket has room again; fails if it closes first. */
  private drained(link: Link, dest: number): Promise<void> {
    const socket = link.socket!;
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        socket.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        socket.off('drain', onDrain);
        reject(link.error ?? new CkptError(ErrorCodes.JOB_ABORTED, `connection to rank ${dest} closed while sending`));
      };
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
  }
}
