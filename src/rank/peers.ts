// Direct rank-to-rank connections. Each rank listens on its own socket (unix in the
// job's private directory, or TCP). Right after the wire-up each pair of ranks gets
// one connection, both ways: the higher rank connects to the lower one and says who
// it is (peer-hello with the job secret). One bidirectional connection, not one per
// direction: over TCP a reply then carries the ACK of the message it answers, instead
// of each message costing a bare ACK packet on a second connection (one-way latency
// of a small ping-pong about 30% lower). Each direction is still exactly one byte
// stream, so per-peer order is the stream's byte order, and a half-close (end())
// says "nothing more from me".
// Both sides read with `onread` (the kernel writes a large message straight into its
// final buffer); Node offers no `onread` to accepted sockets, so the lower rank reads
// through a duplicate of the accepted fd wrapped in a socket of its own.
import { createConnection, Socket, type Server, type SocketConstructorOpts } from 'node:net';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { native } from '../util/native.js';
import {
  decodeControl,
  encodeControl,
  encodeFrame,
  encodeHeader,
  FrameDecoder,
  FrameKind,
  MAX_CONTROL_BYTES,
  type Frame,
} from '../wire/frame.js';
import {
  helloTimeoutMs,
  HelloGate,
  listenOn,
  parseAddress,
  secretsEqual,
  formatAddress,
  OOB_PROTOCOL_VERSION,
  type Address,
} from '../wire/channel.js';

/**
 * Payloads up to this size are copied behind the header and written at once; bigger
 * ones go out without a copy (header and payload in one writev), and send() resolves
 * when the kernel has them. Copying and allocating 64 KiB per message cost about
 * 40% of the streaming bandwidth at 32-64 KiB; below 8 KiB the copy is cheaper.
 */
const COPY_LIMIT = 8 * 1024;

export interface PeerNetworkOptions {
  rank: number;
  size: number;
  /** Mutable: a job restarted by CRIU has a new id and secret. */
  jobId: string;
  secret: string;
  maxMessageBytes: number;
  /** How long a send waits for its peer's connection to arrive (a lower rank waits for a higher one). */
  linkTimeoutMs: number;
  /** How long an accepted connection has to present a valid peer-hello (default: the coordinator's, `CKPT_HELLO_TIMEOUT_MS`). */
  helloTimeoutMs?: number;
  /** Accepted connections held at once before their hello (default MAX_UNAUTHENTICATED); more are closed at once. */
  maxUnauthenticated?: number;
  /** A data frame from a peer, in that peer's send order. */
  onFrame: (source: number, frame: Frame) => void;
  /** Where a large payload from `source` should be read to, once its header is in (see FrameDecoder). */
  bodyFor?: (source: number, kind: FrameKind, tag: number, length: number) => Buffer | undefined;
  /** The stream from a peer ended: it sent everything it will ever send us. */
  onPeerEnd: (source: number) => void;
  /** Something broke that makes the communicator unusable. */
  onFatal: (err: CkptError) => void;
}

/** The connection with one peer, used both ways. */
interface Link {
  /** Set once usable: when we connect (writes wait in the socket until it is up), or when the peer's hello is accepted. */
  socket?: Socket;
  /** Frames written before the peer's connection arrived, in order. */
  queue: Buffer[];
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
  timer?: NodeJS.Timeout;
  /** Nothing more may be written: the peer ended its side (so we ended ours), we ended, or the socket closed. */
  closed: boolean;
  error?: CkptError;
}

/**
 * Node gives accepted sockets no `onread`. A duplicate of the accepted socket's fd,
 * wrapped in a socket of our own, has it: the kernel then writes a large message
 * straight into its final buffer on this side too. The original wrapper is closed
 * (the connection lives on in the duplicate). Falls back to the accepted socket.
 */
function readingWithOnread(accepted: Socket, onread: { buffer: () => Uint8Array; callback: (n: number) => boolean }): Socket {
  const fd = (accepted as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return accepted;
  let copy: number;
  try {
    copy = native().dup(fd);
  } catch {
    return accepted;
  }
  // `onread` is a Socket constructor option (net.connect() hands its options to it); Node 20's types list it for connect only.
  const socket = new Socket({ fd: copy, readable: true, writable: true, onread } as SocketConstructorOpts);
  accepted.on('error', () => {});
  accepted.destroy();
  return socket;
}

/** Closes a socket without its handlers reporting anything (a planned close). */
function quietly(socket: Socket | undefined): void {
  if (!socket) return;
  socket.removeAllListeners('close');
  socket.removeAllListeners('error');
  socket.removeAllListeners('data');
  socket.removeAllListeners('end');
  socket.on('error', () => {});
  socket.destroy();
}

export class PeerNetwork {
  private server: Server | undefined;
  private readonly links: Link[];
  /** Connections accepted and not yet closed (before and after their hello). */
  private readonly accepted = new Set<Socket>();
  /** Accepted connections whose peer-hello has not been accepted yet (closed after the hello timeout). */
  private readonly gate: HelloGate;
  /** Ranks whose stream to us has ended. */
  readonly ended: boolean[];
  /**
   * Frames handed to each peer's socket, and frames read from each peer: the
   * drain step of a checkpoint waits until read[i] on j equals written[j] on i.
   */
  readonly written: number[];
  readonly read: number[];
  /** While a checkpoint drains, new frames are held back here, per destination. */
  private held: Buffer[][] | undefined;
  /** Called after every frame read (the drain step watches the counts). */
  onRead: (() => void) | undefined;

  constructor(private readonly o: PeerNetworkOptions) {
    this.links = Array.from({ length: o.size }, () => ({ queue: [], waiters: [], closed: false }));
    this.ended = new Array(o.size).fill(false);
    this.written = new Array(o.size).fill(0);
    this.read = new Array(o.size).fill(0);
    this.gate = new HelloGate(o.maxUnauthenticated);
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
    this.links.forEach((link, dest) => link.queue.forEach((frame) => out.push({ dest, frame })));
    this.held?.forEach((frames, dest) => frames.forEach((frame) => out.push({ dest, frame })));
    return out;
  }

  /** Queues an already encoded frame (a restarted rank re-sends what it had not sent). */
  writeFrame(dest: number, frame: Buffer): void {
    const link = this.links[dest]!;
    if (this.held) {
      this.held[dest]!.push(frame);
    } else if (link.socket) {
      // A peer that ended its side reads nothing more: the frame is dropped, as its later sends fail.
      if (link.closed) return;
      link.socket.write(frame);
      this.written[dest]!++;
    } else {
      link.queue.push(frame);
    }
  }

  get size(): number {
    return this.o.size;
  }

  /** A restarted job has a new id and secret: later hellos carry them. */
  setIdentity(jobId: string, secret: string): void {
    this.o.jobId = jobId;
    this.o.secret = secret;
  }

  /**
   * Closes every peer connection and the listening socket, quietly: no peer is
   * reported gone, no link failed (a CRIU checkpoint takes the rank down to no
   * connections; listen() and connectAll() build the network again). Sends are
   * expected to be held (pause()) and every link drained. The sockets' fds are
   * closed when it resolves.
   */
  async disconnect(timeoutMs = 5000): Promise<void> {
    // What was handed to a socket leaves our buffers first (the drain step saw it read).
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
    // A peer that went down first may have ended or reset our connection: that was planned.
    this.links.forEach((_, r) => this.resetLink(r));
    for (const s of this.accepted) quietly(s);
    this.accepted.clear();
    // Strangers waiting for their hello went with them (quietly: no close is reported).
    this.gate.reset();
    const server = this.server;
    this.server = undefined;
    server?.close();
    // destroy() closes a socket's fd at once (uv_close on a stream); one turn lets the handles finish.
    await new Promise((r) => setImmediate(r));
  }

  /** Every link with every peer is up (nothing is still connecting, every hello is in). */
  get linked(): boolean {
    const me = this.o.rank;
    return this.links.every((l, r) => r === me || (l.socket !== undefined && !l.closed && !l.socket.connecting && !l.socket.destroyed));
  }

  /**
   * Waits until every link is up: a CRIU checkpoint must not start while a
   * connection is on its way (it would arrive at a socket closed for the dump).
   */
  async whenLinked(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.linked) {
      if (Date.now() > deadline) throw new CkptError(ErrorCodes.TIMEOUT, `rank ${this.o.rank}: its links to the other ranks were not all up after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Starts listening; returns the address other ranks will connect to. */
  async listen(address: Address): Promise<string> {
    // Accepted sockets start paused: accept() re-wraps them to read with `onread`.
    const { server, address: bound } = await listenOn(address, (s) => this.accept(s), { pauseOnConnect: true });
    this.server = server;
    // Nothing here should keep a finished rank program alive; the communicator
    // holds the process open only while an operation is pending.
    server.unref();
    if (bound.transport === 'tcp' && (bound.host === '0.0.0.0' || bound.host === '::')) {
      return formatAddress({ ...bound, host: bound.host === '::' ? '::1' : '127.0.0.1' });
    }
    return formatAddress(bound);
  }

  /**
   * After a criu checkpoint that ended with some ranks dumped and others not (it
   * failed part-way): the links to the ranks that went down are closed, and those
   * ranks listen at new addresses. Each such link is made again — we connect to a
   * lower rank, a higher one connects to us (accept() replaces a closed link).
   */
  relink(peers: string[]): void {
    this.links.forEach((link, r) => {
      if (r === this.o.rank || !(link.closed || link.error)) return;
      this.resetLink(r);
      if (r < this.o.rank) this.connect(r, parseAddress(peers[r]!));
    });
  }

  /** Forgets a closed link (its socket closed quietly), ready to be made again. */
  private resetLink(r: number): void {
    const link = this.links[r]!;
    if (link.timer) clearTimeout(link.timer);
    link.timer = undefined;
    if (link.socket) this.accepted.delete(link.socket);
    quietly(link.socket);
    link.socket = undefined;
    link.closed = false;
    link.error = undefined;
    this.ended[r] = false;
  }

  /** Links up with every other rank (after the wire-up): connects to each lower rank; higher ones connect to us. */
  connectAll(peers: string[]): void {
    for (let r = 0; r < this.o.rank; r++) this.connect(r, parseAddress(peers[r]!));
  }

  /**
   * Queues one message to `dest`. Returns undefined when the caller may reuse its
   * buffer at once (small payloads are copied), else a promise for when the bytes
   * are with the kernel or the socket has room again.
   */
  send(dest: number, kind: FrameKind, tag: number, payload: Uint8Array): Promise<void> | undefined {
    const link = this.links[dest]!;
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
      // The higher rank has not connected yet (it is a moment behind us after the wire-up).
      link.queue.push(encodeFrame(kind, tag, payload));
      link.timer ??= setTimeout(() => {
        this.failLink(link, new CkptError(ErrorCodes.TIMEOUT, `timed out after ${this.o.linkTimeoutMs} ms waiting for rank ${dest} to connect to rank ${this.o.rank}`));
      }, this.o.linkTimeoutMs).unref();
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
      socket.write(payload, (err) => (err ? reject(this.linkError(link, dest, err)) : resolve())),
    );
    socket.uncork();
    return written;
  }

  /**
   * Flushes and half-closes every link: each peer reads our last message, then
   * end-of-file ("nothing more from this rank"), and ends its side in turn (its
   * later sends to us fail). Resolves when every link has closed both ways.
   */
  async closeOutgoing(timeoutMs: number): Promise<void> {
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

  close(): void {
    for (const link of this.links) {
      if (link.timer) clearTimeout(link.timer);
      link.socket?.destroy();
    }
    for (const s of this.accepted) s.destroy();
    this.server?.close();
    this.server = undefined;
  }

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

  private linkError(link: Link, dest: number, err: Error): CkptError {
    return (
      link.error ??
      new CkptError(ErrorCodes.JOB_ABORTED, `lost the connection to rank ${dest}: ${errnoCode(err) ?? err.message}`, {
        cause: err,
        details: { rank: dest },
      })
    );
  }

  private failLink(link: Link, err: CkptError): void {
    link.error ??= err;
    if (link.timer) clearTimeout(link.timer);
    for (const w of link.waiters.splice(0)) w.reject(err);
    link.queue = [];
    this.o.onFatal(err);
  }

  /** A data frame from `source`, in its send order. */
  private arrived(source: number, frame: Frame): void {
    if (frame.kind === FrameKind.CONTROL) {
      // After the hello the only control message on a link is a refusal of it.
      const m = decodeControl(frame.payload);
      if (m.type !== 'error') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${source} sent an unexpected '${m.type}' on a peer link`);
      throw new CkptError(
        Object.values(ErrorCodes).includes(m.code as never) ? (m.code as CkptError['code']) : ErrorCodes.OOB_PROTOCOL,
        `rank ${source} refused our connection: ${String(m.message ?? m.type)}`,
      );
    }
    this.read[source]!++;
    this.o.onFrame(source, frame);
    this.onRead?.();
  }

  /** A bad frame (or a refusal) from `peer`: the communicator is unusable. */
  private badFrame(peer: number, err: unknown, socket: Socket): void {
    const e = err as CkptError;
    this.o.onFatal(new CkptError(e.code ?? ErrorCodes.OOB_PROTOCOL, e.message.startsWith('rank ') ? e.message : `bad frame from rank ${peer}: ${e.message}`));
    socket.destroy();
  }

  /** The higher rank of a pair: connect to `peer`, introduce ourselves, then talk both ways. */
  private connect(peer: number, address: Address): void {
    const decoder = new FrameDecoder(
      (frame) => this.arrived(peer, frame),
      { control: MAX_CONTROL_BYTES, data: this.o.maxMessageBytes },
      this.o.bodyFor && ((kind, tag, length) => this.o.bodyFor!(peer, kind, tag, length)),
    );
    let failed = false;
    const onread = {
      buffer: () => decoder.readBuffer(),
      callback: (n: number) => {
        try {
          decoder.commitRead(n);
        } catch (err) {
          failed = true;
          this.badFrame(peer, err, socket);
          return false;
        }
        return true;
      },
    };
    const socket =
      address.transport === 'unix'
        ? createConnection({ path: address.path, onread })
        : createConnection({ host: address.host, port: address.port, noDelay: true, onread });
    socket.unref();
    // Our data may follow the hello at once (the peer reads the hello first).
    socket.write(encodeControl({ type: 'peer-hello', v: OOB_PROTOCOL_VERSION, job: this.o.jobId, rank: this.o.rank, secret: this.o.secret }));
    this.attach(peer, socket, () => failed);
  }

  /** The lower rank of a pair: a higher rank connected; its hello says which. */
  private accept(accepted: Socket): void {
    // Strangers that never say hello must not fill our descriptors: at most so
    // many wait for their hello at once, each for the hello timeout.
    const admitted = this.gate.admit(accepted);
    if (!admitted) return;
    const authenticated = () => {
      admitted();
      clearTimeout(helloTimer);
    };
    const timeoutMs = this.o.helloTimeoutMs ?? helloTimeoutMs();
    const helloTimer = setTimeout(() => {
      if (peer === -1) refuse(new CkptError(ErrorCodes.TIMEOUT, `no peer-hello within ${timeoutMs} ms`));
    }, timeoutMs);
    helloTimer.unref();
    let peer = -1;
    let failed = false;
    // Data is refused until the hello is accepted: before that a stranger's frame costs its header.
    const limits = { control: MAX_CONTROL_BYTES, data: 0 };
    const refuse = (err: CkptError) => {
      socket.end(encodeControl({ type: 'error', code: err.code, message: err.message }));
      // A stranger that does not read its refusal is not waited for long (it is still counted until then).
      setTimeout(() => socket.destroy(), 1000).unref();
      peer = -2;
    };
    const bodyFor = this.o.bodyFor;
    const decoder = new FrameDecoder(
      (frame) => {
        if (peer >= 0) return this.arrived(peer, frame);
        if (peer === -2) return;
        const m = frame.kind === FrameKind.CONTROL ? decodeControl(frame.payload) : undefined;
        if (!m || m.type !== 'peer-hello') throw new CkptError(ErrorCodes.OOB_PROTOCOL, 'expected peer-hello');
        if (m.v !== OOB_PROTOCOL_VERSION) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `peer protocol version ${String(m.v)} not supported`);
        if (m.job !== this.o.jobId || !secretsEqual(m.secret, this.o.secret)) {
          return refuse(new CkptError(ErrorCodes.OOB_AUTH, 'wrong job secret'));
        }
        const r = m.rank;
        if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= this.o.size || r === this.o.rank) {
          return refuse(new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${String(r)} is not a peer in this job`));
        }
        if (r < this.o.rank) return refuse(new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${r} does not connect to rank ${this.o.rank}: the higher rank of a pair connects`));
        const link = this.links[r]!;
        if (link.socket && !link.closed && !link.error) return refuse(new CkptError(ErrorCodes.OOB_AUTH, `duplicate rank ${r}: it is already connected`));
        // A closed link (that rank went down for a criu dump and is back): replaced.
        if (link.socket || link.error) this.resetLink(r);
        peer = r;
        authenticated();
        limits.data = this.o.maxMessageBytes;
        this.attach(r, socket, () => failed);
      },
      limits,
      bodyFor && ((kind, tag, length) => (peer >= 0 ? bodyFor(peer, kind, tag, length) : undefined)),
    );
    const onError = (err: unknown): void => {
      if (peer >= 0) {
        failed = true;
        this.badFrame(peer, err, socket);
      } else if (peer === -1) {
        refuse(err as CkptError);
      }
    };
    const socket = readingWithOnread(accepted, {
      buffer: () => decoder.readBuffer(),
      callback: (n: number) => {
        try {
          decoder.commitRead(n);
        } catch (err) {
          onError(err);
          return false;
        }
        return true;
      },
    });
    socket.unref();
    socket.setNoDelay?.(true);
    this.accepted.add(socket);
    if (socket === accepted) {
      // No second fd to be had: read 'data' chunks (a large payload is copied once into its buffer).
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (err) {
          onError(err);
        }
      });
      socket.resume();
    }
    socket.on('close', () => {
      this.accepted.delete(socket);
      authenticated();
    });
    // Errors before the hello was accepted concern a stranger's connection only.
    socket.on('error', () => {});
  }

  /** `socket` is now the link with `peer`: flush what waited for it, and watch it. */
  private attach(peer: number, socket: Socket, failed: () => boolean): void {
    const link = this.links[peer]!;
    link.socket = socket;
    socket.on('error', (err) => {
      if (failed()) return;
      link.error ??= this.linkError(link, peer, err);
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

  private peerEnded(peer: number): void {
    if (this.ended[peer]) return;
    this.ended[peer] = true;
    this.o.onPeerEnd(peer);
  }
}
