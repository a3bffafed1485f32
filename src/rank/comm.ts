// The communicator: point-to-point messaging with MPI-style matching.
// Messages from one source arrive in the order sent (one stream per sender);
// a receive takes the earliest arrived message that matches its (source, tag),
// so delivery is in order per (source, tag). Unmatched arrivals wait in a queue.
import { join } from 'node:path';
import { CkptError, ErrorCodes, JobError, UsageError } from '../errors.js';
import { Channel, connectTo, helloTimeoutMs, OOB_PROTOCOL_VERSION, parseAddress, remoteError, type Address } from '../wire/channel.js';
import { FrameKind, MAX_DATA_BYTES, type ControlMessage, type Frame } from '../wire/frame.js';
import { PeerNetwork } from './peers.js';
import { connectorFor } from '../wire/connector.js';
import { Deadlines } from './deadlines.js';
import { syncFiles } from '../store/store.js';
import type { FileEntry } from '../store/checksum.js';
import * as collectives from './collectives.js';
import { CheckpointAgent, type RestartFrom } from './checkpoint.js';
import { currentPid, recordOf } from '../store/record.js';
import { loadRestart, type LibraryState } from './state.js';
import { holdInspectorSignal } from '../util/signals.js';
import { faultPoint } from '../util/faults.js';
import type { CheckpointResult } from '../crs/hooks.js';

/** Matches a message from any rank. */
export const ANY_SOURCE = -1;
/** Matches any user tag (never the library's internal, negative tags). */
export const ANY_TAG = -1;
/** Largest user tag; tags are 0 … MAX_TAG. */
export const MAX_TAG = 0x7fffffff;

/** What travels: bytes (arrive as Buffer) or any JSON-serialisable value. */
export type Data = Uint8Array | JsonValue;
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface Message<T = unknown> {
  source: number;
  tag: number;
  data: T;
}

export interface WaitOptions {
  /** Fail with TIMEOUT after this long (default: the communicator's timeout; 0 = never). */
  timeoutMs?: number;
}

export interface RecvOptions extends WaitOptions {
  /**
   * Receive a bytes message into this buffer (as MPI's recv does): when it fits,
   * the result is a view of `into` (`into.subarray(0, length)`), and a large
   * message is read by the kernel straight into it — no allocation, no page faults
   * for a buffer reused across receives. A message that does not fit, or a JSON
   * one, arrives as usual in memory of its own. `into` must not be touched until
   * the receive resolves.
   */
  into?: Uint8Array;
}

export type ReduceOp = 'sum' | 'min' | 'max';

export interface InitOptions {
  /** Default timeout of every wait (recv, collectives), ms. Env CKPT_TIMEOUT_MS; default 10 minutes. */
  timeoutMs?: number;
  /** Largest message accepted from a peer. */
  maxMessageBytes?: number;
  /** When the coordinator goes away unexpectedly, exit the process (default) or only fail pending operations. */
  onCoordinatorLost?: 'exit' | 'error';
  /**
   * When the job is aborted (another rank failed, or a kill), exit this process
   * at once and quietly (default: the launcher reports the cause once) or only
   * fail pending operations with JOB_ABORTED.
   */
  onAbort?: 'exit' | 'error';
  /** The environment to read CKPT_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** @internal how this rank reaches its coordinator again (after a CRIU checkpoint or restore). */
export interface CoordinatorLink {
  coord: Address;
  secret: string;
  env: NodeJS.ProcessEnv;
  connectTimeoutMs: number;
  joinTimeoutMs: number;
  onAbort: 'exit' | 'error';
  onCoordinatorLost: 'exit' | 'error';
}

/** A message as it arrived, before decoding. */
export interface RawMessage {
  source: number;
  tag: number;
  kind: FrameKind;
  payload: Buffer;
}

interface Posted {
  source: number;
  tag: number;
  what: string;
  into?: Uint8Array;
  resolve: (m: RawMessage) => void;
  reject: (e: Error) => void;
  /** When it times out (performance.now()); Infinity: never, or settled. */
  deadline: number;
  expire: () => void;
}

const DEFAULT_TIMEOUT_MS = 600_000;
const CONNECT_TIMEOUT_MS = 10_000;

export class Comm {
  readonly rank: number;
  readonly size: number;
  /** The job's id (a job restarted by CRIU has a new one). */
  jobId: string;
  /** Messages sent to / received from each rank (user and collective traffic alike). */
  readonly sent: number[];
  readonly received: number[];
  readonly timeoutMs: number;

  private readonly unexpected: RawMessage[] = [];
  private readonly posted: Posted[] = [];
  private readonly deadlines = new Deadlines();
  /** Receives matched to a large message whose bytes are still being read into their `into`, by that buffer. */
  private readonly claimed = new Map<Buffer, Posted>();
  private pendingOps = 0;
  private keepAlive: (() => void) | undefined;
  private fatal: CkptError | undefined;
  private finalized = false;
  /** The coordinator connection is being closed on purpose (a CRIU checkpoint). */
  private oobLeaving = false;

  /** True once finalize() has been called. */
  get isFinalized(): boolean {
    return this.finalized;
  }
  /** @internal the checkpoint agent's unasked messages to the coordinator */
  tellCoordinator(message: ControlMessage): void {
    if (this.oob && !this.oob.isClosed) this.oob.send(message);
  }
  /** For ranks known to have exited: how many messages they sent us (null: unknown). */
  private readonly exited = new Map<number, number | null>();
  /** @internal the checkpoint protocol's rank side */
  readonly agent: CheckpointAgent;

  /** @internal use init() */
  constructor(
    rank: number,
    size: number,
    jobId: string,
    timeoutMs: number,
    private readonly peers: PeerNetwork | undefined,
    private oob: Channel | undefined,
    restartFrom?: RestartFrom,
    private readonly link?: CoordinatorLink,
  ) {
    this.agent = new CheckpointAgent(this, peers, restartFrom);
    this.rank = rank;
    this.size = size;
    this.jobId = jobId;
    this.timeoutMs = timeoutMs;
    this.sent = new Array(size).fill(0);
    this.received = new Array(size).fill(0);
  }

  // ---- point to point -------------------------------------------------------

  /**
   * Sends `data` to rank `dest` with a user tag (default 0). Resolves once the
   * caller may reuse `data` (at once for small messages, when the kernel holds
   * the bytes for large ones).
   */
  async send(dest: number, data: Data, tag = 0): Promise<void> {
    this.checkTag(tag, 'send');
    const { kind, payload } = encodeData(data);
    await this.sendRaw(dest, kind, tag, payload);
  }

  /** Receives the next matching message's data. */
  async recv<T = unknown>(source: number = ANY_SOURCE, tag: number = ANY_TAG, options: RecvOptions = {}): Promise<T> {
    return (await this.recvMessage<T>(source, tag, options)).data;
  }

  /** Receives the next matching message with its source and tag (for ANY_SOURCE / ANY_TAG). */
  async recvMessage<T = unknown>(source: number = ANY_SOURCE, tag: number = ANY_TAG, options: RecvOptions = {}): Promise<Message<T>> {
    if (tag !== ANY_TAG) this.checkTag(tag, 'recv');
    if (source !== ANY_SOURCE) this.checkRank(source, 'recv from');
    const into = options.into;
    if (into !== undefined && !(into instanceof Uint8Array)) throw new UsageError('recv: `into` must be a Buffer or Uint8Array');
    const raw = await this.recvRaw(source, tag, `recv(source=${source === ANY_SOURCE ? 'ANY' : source}, tag=${tag === ANY_TAG ? 'ANY' : tag})`, options.timeoutMs, into);
    return { source: raw.source, tag: raw.tag, data: decodeData(into ? placeInto(raw, into) : raw) as T };
  }

  // ---- collectives (every rank calls them in the same order) ----------------

  barrier(options: WaitOptions = {}): Promise<void> {
    return collectives.barrier(this, options.timeoutMs);
  }

  /** Root's value, on every rank. */
  bcast<T extends Data>(value: T | undefined, root = 0, options: WaitOptions = {}): Promise<T> {
    return collectives.bcast(this, value, root, options.timeoutMs) as Promise<T>;
  }

  /** Combines a number (or equal-length arrays of numbers, elementwise) from every rank; every rank gets the result. */
  allreduce<T extends number | number[]>(value: T, op: ReduceOp, options: WaitOptions = {}): Promise<T> {
    return collectives.allreduce(this, value, op, options.timeoutMs) as Promise<T>;
  }

  /** Every rank's value, indexed by rank, on root; undefined elsewhere. */
  gather<T extends Data>(value: T, root = 0, options: WaitOptions = {}): Promise<T[] | undefined> {
    return collectives.gather(this, value, root, options.timeoutMs) as Promise<T[] | undefined>;
  }

  // ---- checkpoints --------------------------------------------------------------

  /**
   * A safe point for the self checkpointer: call it where everything the program
   * needs is in what save() returns (say, at the top of each iteration), the same
   * number of times on every rank. Resolves null at once when no checkpoint stops
   * here; otherwise with the checkpoint's result: `continue` after it is committed,
   * or `restart` — the first safe point of a rank restarted from a snapshot.
   */
  async safePoint(): Promise<CheckpointResult | null> {
    // Waiting at a safe point is a pending operation: it keeps the process alive.
    this.hold(1);
    try {
      return await this.agent.safePoint();
    } finally {
      this.hold(-1);
    }
  }

  /**
   * Asks for a checkpoint of the whole job (collective: every rank calls it) and
   * takes it. A rank's k-th call is answered by the job's k-th rank-requested
   * checkpoint: with self, every rank stops at its safe point; with criu, a rank
   * that comes late gets the result of the checkpoint already taken.
   */
  async checkpoint(options: WaitOptions = {}): Promise<CheckpointResult | null> {
    const k = this.agent.nextCall();
    if (this.rank === 0 && this.oob) {
      // The coordinator takes it once any checkpoint in progress is over.
      const reply = await this.oob.request({ type: 'request', op: 'checkpoint' }, options.timeoutMs ?? this.timeoutMs, 'the coordinator to accept a checkpoint request');
      if (reply.ok === false) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `checkpoint refused: ${String(reply.message)}`);
    }
    if (!this.oob) return null;
    this.hold(1);
    try {
      for (;;) {
        if (this.agent.isRequestedPrepared(k) && this.agent.pendingRequested !== k) return await this.agent.requestedResult(k);
        await Promise.race([this.agent.whenPending(), this.agent.requestedPrepared(k)]);
        if (this.agent.pendingCrs === 'self') {
          // Another checkpoint may come first: this rank stops at its safe point too.
          const mine = this.agent.pendingRequested === k;
          const result = await this.agent.safePoint();
          if (mine && (result || !this.agent.isPending)) return result;
          continue;
        }
        if (this.agent.isRequestedPrepared(k)) return await this.agent.requestedResult(k);
        // A criu checkpoint that is not ours: it needs nothing from us.
        await this.agent.whenIdle();
      }
    } finally {
      this.hold(-1);
    }
  }

  /** @internal what a self checkpoint saves of the library */
  captureState(): LibraryState {
    return {
      rank: this.rank,
      size: this.size,
      sent: [...this.sent],
      received: [...this.received],
      unexpected: this.unexpected.map((m) => ({ source: m.source, tag: m.tag, kind: m.kind, payload: m.payload.toString('base64') })),
      unsent: (this.peers?.unsent() ?? []).map((u) => ({ dest: u.dest, frame: u.frame.toString('base64') })),
    };
  }

  /** @internal a restarted rank takes up where the snapshot left off */
  restoreState(state: LibraryState): void {
    state.sent.forEach((n, i) => (this.sent[i] = n));
    state.received.forEach((n, i) => (this.received[i] = n));
    for (const m of state.unexpected) {
      this.unexpected.push({ source: m.source, tag: m.tag, kind: m.kind as FrameKind, payload: Buffer.from(m.payload, 'base64') });
    }
    for (const u of state.unsent) this.peers?.writeFrame(u.dest, Buffer.from(u.frame, 'base64'));
  }

  // ---- life cycle -------------------------------------------------------------

  /** Message counters per peer, copied (the drain step of a checkpoint compares them). */
  stats(): { sent: number[]; received: number[] } {
    return { sent: [...this.sent], received: [...this.received] };
  }

  /**
   * Ends this rank's part in the job: flushes and closes its connections and
   * reports its counters to the coordinator. Messages still unreceived are dropped.
   */
  async finalize(): Promise<void> {
    if (this.finalized) return;
    // Not in the middle of a checkpoint: its snapshot must not see a half-finalized rank.
    await this.agent.whenIdle();
    this.finalized = true;
    const keep = setInterval(() => {}, 1 << 30);
    try {
      await this.peers?.closeOutgoing(this.timeoutMs || DEFAULT_TIMEOUT_MS);
      if (this.oob && !this.oob.isClosed && !this.fatal) {
        await this.oob.request({ type: 'finalize', sent: this.sent, received: this.received }, CONNECT_TIMEOUT_MS, 'the coordinator to acknowledge finalize');
      }
    } finally {
      clearInterval(keep);
      this.fail(new JobError(ErrorCodes.USAGE, 'the communicator was finalized'));
      this.oob?.close();
      this.peers?.close();
    }
  }

  /** @internal listens to the coordinator on `oob` (at init, and after a CRIU checkpoint) */
  attachCoordinator(oob: Channel): void {
    this.oob = oob;
    this.oobLeaving = false;
    oob.socket.unref();
    if (this.keepAlive) {
      // A pending operation held the old connection open: hold the new one instead.
      this.keepAlive();
      this.keepAlive = undefined;
      const n = this.pendingOps;
      this.pendingOps = 0;
      this.hold(n);
    }
    const onAbort = this.link?.onAbort ?? 'exit';
    oob.on('message', (m) => onCoordinatorMessage(this, oob, m, onAbort));
    oob.on('close', () => {
      if (this.finalized || this.oob !== oob || this.oobLeaving) return;
      const err = new CkptError(ErrorCodes.OOB_UNREACHABLE, `rank ${this.rank} lost its coordinator (job ${this.jobId})`);
      this.fail(err);
      if ((this.link?.onCoordinatorLost ?? 'exit') === 'exit') {
        // The job is gone: a rank must not outlive it.
        process.stderr.write(`ckpt/rank: ${err.message}; exiting\n`);
        process.exit(70);
      }
    });
  }

  /**
   * @internal ckpt-dump (criu checkpointer): reply, close every connection, let
   * CRIU dump this process, then rejoin — the same coordinator (continue), or,
   * in a copy a restart brought back, the restarted job's new one.
   */
  async criuDump(oob: Channel, m: ControlMessage): Promise<void> {
    let rankDir: string;
    try {
      await faultPoint('dump', this.rank);
      if (!this.peers || !this.link) throw new CkptError(ErrorCodes.INTERNAL, 'a singleton has nothing to dump');
      ({ rankDir } = await this.agent.beginDump(m));
    } catch (err) {
      oob.send({ type: 'reply', id: m.id, ok: false, message: (err as Error).message, code: (err as CkptError).code });
      return;
    }
    // Going down: the reply, then no connection leads outside this process.
    this.oobLeaving = true;
    await oob.sendFlushed({ type: 'reply', id: m.id, ok: true });
    oob.destroy();
    await this.peers.disconnect();
    let restored = false;
    let dumpError: Error | undefined;
    let files: FileEntry[] | undefined;
    const t0 = performance.now();
    try {
      const { dumpJobRank } = await import('../crs/criu/index.js');
      restored = (await dumpJobRank(join(rankDir, 'images'), recordOf(currentPid()))).restored;
      // The original makes its own images durable and checksums them, all ranks at once:
      // the coordinator's commit then takes them as they are.
      if (!restored) files = await syncFiles(rankDir, join(rankDir, 'images'));
    } catch (err) {
      dumpError = err as Error;
    }
    // This rank's local snapshot, for the coordinator's record (not meaningful in a restored copy).
    const dumpMs = Math.round((performance.now() - t0) * 100) / 100;
    try {
      await faultPoint(restored ? 'rejoin' : 'dumped', this.rank);
      if (restored) {
        const info = this.agent.readRejoin();
        this.jobId = info.job;
        this.link.coord = parseAddress(info.coord);
        this.link.secret = info.secret;
        this.peers.setIdentity(info.job, info.secret);
        Object.assign(this.link.env, { CKPT_JOB_ID: info.job, CKPT_COORD: info.coord, CKPT_JOB_SECRET: info.secret });
      }
      await this.rejoin(restored, dumpError, dumpMs, files);
    } catch (err) {
      process.stderr.write(`ckpt/rank: rank ${this.rank} cannot rejoin its job after a checkpoint: ${(err as Error).message}; exiting\n`);
      process.exit(70);
    }
  }

  private async rejoin(restored: boolean, dumpError: Error | undefined, dumpMs: number, files?: FileEntry[]): Promise<void> {
    const link = this.link!;
    const peers = this.peers!;
    const peerAddress = await listenForPeers(peers, link.coord, this.rank, link.env);
    const socket = await connectTo(link.coord, link.connectTimeoutMs);
    const ch = new Channel(socket);
    const hello = { type: 'hello', v: OOB_PROTOCOL_VERSION, role: 'rank', job: this.jobId, rank: this.rank, pid: currentPid(), secret: link.secret, peer: peerAddress };
    if (!restored) {
      // The same coordinator: it waits for every rank to rejoin, commits, and sends ckpt-resume with the new peer addresses.
      ch.send({ ...hello, rejoin: true, dumped: dumpError ? 'error' : 'ok', dumpMs, ...(files ? { files } : {}), ...(dumpError ? { message: dumpError.message } : {}) });
      this.attachCoordinator(ch);
      return;
    }
    // A restarted job: a fresh coordinator, joined like a new rank.
    ch.send({ ...hello, restored: true });
    const welcome = await ch.next(link.joinTimeoutMs, 'the other ranks to join the restarted job (welcome)');
    if (welcome.type === 'error') throw remoteError(welcome, 'the coordinator refused this rank');
    if (welcome.type === 'abort') throw new JobError(ErrorCodes.JOB_ABORTED, `job aborted: ${String(welcome.message)}`);
    if (welcome.type !== 'welcome' || !Array.isArray(welcome.peers) || welcome.peers.length !== this.size) {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `expected welcome from the coordinator, got '${welcome.type}'`);
    }
    peers.connectAll(welcome.peers as string[]);
    this.attachCoordinator(ch);
    await this.agent.finishCriuRestart();
  }

  /** Asks the coordinator to abort the whole job; the job ends with `status`. */
  async abort(message: string, status = 1): Promise<void> {
    if (this.oob && !this.oob.isClosed) {
      this.oob.send({ type: 'abort', message, status });
      // Give the coordinator the chance to end the job; it kills this process too.
      await new Promise((r) => setTimeout(r, 2000));
    }
    process.exit(status);
  }

  // ---- internal: used by collectives ---------------------------------------------

  /** @internal */
  async sendRaw(dest: number, kind: FrameKind, tag: number, payload: Uint8Array): Promise<void> {
    this.checkRank(dest, 'send to');
    if (this.fatal) throw this.fatal;
    this.sent[dest]!++;
    if (dest === this.rank) {
      // A copy: the caller may reuse its buffer as soon as send() returns.
      this.deliver({ source: dest, tag, kind, payload: Buffer.from(payload) });
      return;
    }
    if (!this.peers) throw new CkptError(ErrorCodes.INTERNAL, 'no peer network');
    const pending = this.peers.send(dest, kind, tag, payload);
    if (pending) {
      this.hold(1);
      try {
        await pending;
      } finally {
        this.hold(-1);
      }
    }
  }

  /** @internal */
  recvRaw(source: number, tag: number, what: string, timeoutMs: number | undefined, into?: Uint8Array): Promise<RawMessage> {
    if (this.fatal) return Promise.reject(this.waitError(this.fatal, what));
    const i = this.unexpected.findIndex((m) => matches(source, tag, m));
    if (i >= 0) return Promise.resolve(this.unexpected.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timeout = timeoutMs ?? this.timeoutMs;
      const entry: Posted = {
        source,
        tag,
        what,
        into,
        resolve,
        reject,
        deadline: timeout > 0 ? performance.now() + timeout : Infinity,
        expire: () => {
          this.unpost(entry);
          reject(new CkptError(ErrorCodes.TIMEOUT, `rank ${this.rank} timed out after ${timeout} ms in ${what}`, { details: { rank: this.rank } }));
        },
      };
      this.deadlines.add(entry);
      this.posted.push(entry);
      this.hold(1);
      const dead = this.unreachable(entry);
      if (dead) {
        this.unpost(entry);
        reject(dead);
      }
    });
  }

  /**
   * @internal A bytes message's header is in: if the receive it matches (the
   * first posted one, as deliver() would pick) brought a buffer it fits in, the
   * message is matched now and its bytes are read straight into that buffer.
   */
  claimBody(source: number, kind: FrameKind, tag: number, length: number): Buffer | undefined {
    if (kind !== FrameKind.BYTES) return undefined;
    const i = this.posted.findIndex((p) => matches(p.source, p.tag, { source, tag }));
    const p = this.posted[i];
    if (!p?.into || p.into.byteLength < length) return undefined;
    this.posted.splice(i, 1);
    // Its bytes are arriving: no timeout cuts them off (a broken link fails it instead).
    this.deadlines.remove(p);
    const body = Buffer.from(p.into.buffer, p.into.byteOffset, length);
    this.claimed.set(body, p);
    return body;
  }

  /** @internal */
  deliver(m: RawMessage): void {
    this.received[m.source]!++;
    const claimed = this.claimed.get(m.payload);
    if (claimed) {
      this.claimed.delete(m.payload);
      this.settle(claimed);
      claimed.resolve(m);
      return;
    }
    for (let i = 0; i < this.posted.length; i++) {
      const p = this.posted[i]!;
      if (matches(p.source, p.tag, m)) {
        this.posted.splice(i, 1);
        this.settle(p);
        p.resolve(m);
        return;
      }
    }
    this.unexpected.push(m);
  }

  /** @internal a peer finished: fail receives that nothing can satisfy any more. */
  peerGone(rank: number, sentToUs: number | null | undefined): void {
    if (sentToUs !== undefined) this.exited.set(rank, sentToUs);
    for (const p of [...this.posted]) {
      const err = this.unreachable(p);
      if (err) {
        this.unpost(p);
        p.reject(err);
      }
    }
  }

  /** @internal the job is over for this rank: every pending and later operation fails with `err`. */
  fail(err: CkptError): void {
    if (this.fatal) return;
    this.fatal = err;
    for (const p of [...this.posted.splice(0), ...this.claimed.values()]) {
      this.settle(p);
      p.reject(this.waitError(err, p.what));
    }
    this.claimed.clear();
  }

  private waitError(err: CkptError, what: string): CkptError {
    return new CkptError(err.code, `rank ${this.rank}: ${err.message} (in ${what})`, { cause: err, details: err.details });
  }

  /** Why a posted receive can never be satisfied, if it cannot. */
  private unreachable(p: Posted): CkptError | undefined {
    const done = (r: number) => {
      if (r === this.rank) return false;
      if (!this.exited.has(r)) return false;
      const sent = this.exited.get(r);
      if (sent === null || sent === undefined) return this.peers?.ended[r] === true;
      return this.received[r]! >= sent;
    };
    if (p.source !== ANY_SOURCE) {
      return done(p.source)
        ? new JobError(ErrorCodes.JOB_ABORTED, `rank ${this.rank}: rank ${p.source} exited without sending what ${p.what} waits for`)
        : undefined;
    }
    for (let r = 0; r < this.size; r++) if (!done(r) && r !== this.rank) return undefined;
    // Only this rank could still send: possible (from another async task) but a
    // likely deadlock when the job has others; keep waiting in a singleton.
    return this.size > 1 ? new JobError(ErrorCodes.JOB_ABORTED, `rank ${this.rank}: every other rank exited while ${p.what} waited`) : undefined;
  }

  private unpost(p: Posted): void {
    const i = this.posted.indexOf(p);
    if (i >= 0) this.posted.splice(i, 1);
    this.settle(p);
  }

  private settle(p: Posted): void {
    this.deadlines.remove(p);
    this.hold(-1);
  }

  /**
   * Keeps the process alive while an operation is pending (all sockets are
   * unref'd, so a rank that returns without finalize() still exits).
   */
  private hold(delta: number): void {
    this.pendingOps += delta;
    if (this.pendingOps > 0 && !this.keepAlive) {
      const oob = this.oob;
      if (oob && !oob.isClosed) {
        oob.socket.ref();
        this.keepAlive = () => oob.socket.unref();
      } else {
        const timer = setInterval(() => {}, 1 << 30);
        this.keepAlive = () => clearInterval(timer);
      }
    } else if (this.pendingOps === 0 && this.keepAlive) {
      this.keepAlive();
      this.keepAlive = undefined;
    }
  }

  private checkRank(r: number, what: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size) {
      throw new CkptError(ErrorCodes.USAGE, `cannot ${what} rank ${r}: ranks are 0…${this.size - 1}`);
    }
  }

  private checkTag(tag: number, what: string): void {
    if (!Number.isInteger(tag) || tag < 0 || tag > MAX_TAG) {
      throw new CkptError(ErrorCodes.USAGE, `${what}: tag ${tag} is not a whole number 0…${MAX_TAG}`);
    }
  }
}

function matches(source: number, tag: number, m: { source: number; tag: number }): boolean {
  return (source === ANY_SOURCE || source === m.source) && (tag === ANY_TAG ? m.tag >= 0 : tag === m.tag);
}

/** @internal */
export function encodeData(data: unknown): { kind: FrameKind; payload: Uint8Array } {
  if (data instanceof Uint8Array) return { kind: FrameKind.BYTES, payload: data };
  const text = JSON.stringify(data);
  if (text === undefined) throw new CkptError(ErrorCodes.USAGE, `cannot send ${typeof data}: send bytes or a JSON-serialisable value`);
  return { kind: FrameKind.JSON, payload: Buffer.from(text, 'utf8') };
}

/** @internal */
/** A bytes message as a view of `into` (copied there unless it was read there), when it fits. */
function placeInto(m: RawMessage, into: Uint8Array): RawMessage {
  if (m.kind !== FrameKind.BYTES || m.payload.length > into.byteLength) return m;
  const view = Buffer.from(into.buffer, into.byteOffset, m.payload.length);
  if (m.payload.buffer !== into.buffer || m.payload.byteOffset !== into.byteOffset) m.payload.copy(view);
  return { ...m, payload: view };
}

export function decodeData(m: { kind: FrameKind; payload: Buffer }): unknown {
  if (m.kind === FrameKind.BYTES) return m.payload;
  return JSON.parse(m.payload.toString('utf8'));
}

/**
 * Joins the job this process was started in by `ckpt run` (CKPT_* environment).
 * Without that environment, returns a communicator of size 1 (a "singleton").
 */
export async function init(options: InitOptions = {}): Promise<Comm> {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? envInt(env, 'CKPT_TIMEOUT_MS') ?? DEFAULT_TIMEOUT_MS;
  // The scheduler's SIGUSR1 reaches every rank: it must not open a debugger port.
  holdInspectorSignal();
  if (env.CKPT_JOB_ID === undefined) return new Comm(0, 1, 'singleton', timeoutMs, undefined, undefined);

  const rank = envInt(env, 'CKPT_RANK');
  const size = envInt(env, 'CKPT_SIZE');
  const jobId = env.CKPT_JOB_ID;
  const coord = env.CKPT_COORD;
  const secret = env.CKPT_JOB_SECRET ?? '';
  if (rank === undefined || size === undefined || coord === undefined || rank >= size) {
    throw new CkptError(ErrorCodes.USAGE, 'incomplete ckpt environment: CKPT_RANK, CKPT_SIZE and CKPT_COORD must be set (start ranks with ckpt run)');
  }
  // A rank of a job restarted from a snapshot resumes from its part of it.
  let restart: ReturnType<typeof loadRestart> | undefined;
  const restartDir = env.CKPT_RESTART_SNAPSHOT;
  if (restartDir) {
    restart = loadRestart(restartDir, rank, size);
    delete env.CKPT_RESTART_SNAPSHOT;
  }
  const coordAddress = parseAddress(coord);
  const socket = await connectTo(coordAddress, envInt(env, 'CKPT_CONNECT_TIMEOUT_MS') ?? CONNECT_TIMEOUT_MS);
  const oob = new Channel(socket);

  let comm: Comm | undefined;
  // Peers may send as soon as they have their welcome, a moment before we have ours.
  const early: RawMessage[] = [];
  const peers = new PeerNetwork({
    rank,
    size,
    jobId,
    secret,
    maxMessageBytes: options.maxMessageBytes ?? MAX_DATA_BYTES,
    linkTimeoutMs: envInt(env, 'CKPT_JOIN_TIMEOUT_MS') ?? 70_000,
    helloTimeoutMs: helloTimeoutMs(env),
    bodyFor: (source, kind, tag, length) => comm?.claimBody(source, kind, tag, length),
    onFrame: (source: number, frame: Frame) => {
      const m = { source, tag: frame.tag, kind: frame.kind, payload: frame.payload };
      if (comm) comm.deliver(m);
      else early.push(m);
    },
    onPeerEnd: (source) => comm?.peerGone(source, undefined),
    // A broken peer link usually means that peer died, and the coordinator's abort
    // is on its way: give it a moment so the job ends with the real cause.
    onFatal: (err) => setTimeout(() => comm?.fail(err), 1000).unref(),
  });
  try {
    const peerAddress = await listenForPeers(peers, coordAddress, rank, env);
    oob.send({ type: 'hello', v: OOB_PROTOCOL_VERSION, role: 'rank', job: jobId, rank, pid: process.pid, secret, peer: peerAddress });
    // The coordinator enforces the join timeout and tells us; ours is only a backstop.
    const welcome = await oob.next(envInt(env, 'CKPT_JOIN_TIMEOUT_MS') ?? 70_000, 'the other ranks to join the job (welcome)');
    if (welcome.type === 'error') throw remoteError(welcome, 'the coordinator refused this rank');
    if (welcome.type === 'abort') throw new JobError(ErrorCodes.JOB_ABORTED, `job aborted: ${String(welcome.message)}`);
    if (welcome.type !== 'welcome' || !Array.isArray(welcome.peers) || welcome.peers.length !== size) {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `expected welcome from the coordinator, got '${welcome.type}'`);
    }
    peers.connectAll(welcome.peers as string[]);
  } catch (err) {
    oob.destroy();
    peers.close();
    throw err;
  }
  const link: CoordinatorLink = {
    coord: coordAddress,
    secret,
    env,
    connectTimeoutMs: envInt(env, 'CKPT_CONNECT_TIMEOUT_MS') ?? CONNECT_TIMEOUT_MS,
    joinTimeoutMs: envInt(env, 'CKPT_JOIN_TIMEOUT_MS') ?? 70_000,
    onAbort: options.onAbort ?? 'exit',
    onCoordinatorLost: options.onCoordinatorLost ?? 'exit',
  };
  comm = new Comm(rank, size, jobId, timeoutMs, peers, oob, restart?.from, link);
  const c = comm;
  if (restart) c.restoreState(restart.library);
  for (const m of early) c.deliver(m);
  c.attachCoordinator(oob);
  return comm;
}

function onCoordinatorMessage(comm: Comm, oob: Channel, m: ControlMessage, onAbort: 'exit' | 'error'): void {
  switch (m.type) {
    case 'exited':
      if (typeof m.rank === 'number') comm.peerGone(m.rank, typeof m.sent === 'number' ? m.sent : null);
      return;
    case 'abort':
      if (onAbort === 'exit') process.exit(1);
      comm.fail(new JobError(ErrorCodes.JOB_ABORTED, `job aborted: ${String(m.message)}`));
      return;
    case 'request':
      if (m.op === 'ckpt-dump') void comm.criuDump(oob, m);
      else if (typeof m.op === 'string' && m.op.startsWith('ckpt-')) {
        comm.agent.handle(m).then(
          (body) => oob.send({ type: 'reply', id: m.id, ok: true, ...body }),
          (err: Error) => oob.send({ type: 'reply', id: m.id, ok: false, message: err.message, code: (err as CkptError).code }),
        );
      } else if (m.op === 'stats') oob.send({ type: 'reply', id: m.id, ok: true, ...comm.stats() });
      else oob.send({ type: 'reply', id: m.id, ok: false, message: `unknown operation '${String(m.op)}'` });
      return;
    case 'error':
      comm.fail(remoteError(m, 'the coordinator reported an error'));
      return;
    default:
      comm.fail(new CkptError(ErrorCodes.OOB_PROTOCOL, `unexpected message '${m.type}' from the coordinator`));
  }
}

/** Listens for the peers where the connector says (this host's address, see wire/connector.ts); returns the address to hand out. */
async function listenForPeers(peers: PeerNetwork, coord: Address, rank: number, env: NodeJS.ProcessEnv): Promise<string> {
  const connector = connectorFor(coord, env);
  return peers.listen(await connector.listenAddress(`r${rank}`), connector);
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new CkptError(ErrorCodes.USAGE, `${name} must be a whole number, not '${v}'`);
  return Number(v);
}
