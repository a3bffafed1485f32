// The communicator: what a rank program calls. Point-to-point messaging with
// MPI-style matching (mailbox.ts), collectives (collectives.ts), safe points and
// job checkpoints (checkpoint/). Members marked @internal are the library's own
// and are not in the published typings (stripInternal).
import { CkptError, ErrorCodes, JobError, UsageError } from '../errors.js';
import type { CheckpointResult } from '../crs/hooks.js';
import type { DumpRun } from '../crs/job.js';
import type { Channel } from '../wire/channel.js';
import type { ControlMessage, FrameKind } from '../wire/frame.js';
import { CheckpointAgent } from './checkpoint/agent.js';
import { decodeData, encodeData, placeInto, type Data, type RawMessage } from './codec.js';
import { optionsOf } from './arguments.js';
import * as collectives from './collectives.js';
import { goDown, keptConnection, onCoordinatorMessage, type CoordinatorLink } from './coordinator-link.js';
import { ANY_SOURCE, ANY_TAG, Mailbox } from './mailbox.js';
import type { PeerNetwork } from './peers.js';
import type { LibraryState } from './state.js';

export { ANY_SOURCE, ANY_TAG } from './mailbox.js';
export type { Data, JsonValue } from './codec.js';
export type { ReduceOp } from './collectives.js';
/** Largest user tag; tags are 0 … MAX_TAG. */
export const MAX_TAG = 0x7fffffff;

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

export const DEFAULT_TIMEOUT_MS = 600_000;
export const CONNECT_TIMEOUT_MS = 10_000;

export class Comm {
  readonly rank: number;
  readonly size: number;
  /** The job's id (a job restarted by CRIU has a new one). */
  jobId: string;
  /** Messages sent to / received from each rank (user and collective traffic alike). */
  readonly sent: number[];
  readonly received: number[];
  readonly timeoutMs: number;

  /** @internal */
  readonly mailbox: Mailbox;
  /** @internal the checkpoint protocol's rank side */
  readonly agent: CheckpointAgent;
  private pendingOps = 0;
  private keepAlive: (() => void) | undefined;
  private finalized = false;
  /** The coordinator connection is being closed on purpose (a CRIU checkpoint). */
  private oobLeaving = false;

  /** @internal use init() */
  constructor(
    rank: number,
    size: number,
    jobId: string,
    timeoutMs: number,
    private readonly peers: PeerNetwork | undefined,
    private oob: Channel | undefined,
    restart?: (agent: CheckpointAgent) => Promise<CheckpointResult>,
    private readonly link?: CoordinatorLink,
  ) {
    this.rank = rank;
    this.size = size;
    this.jobId = jobId;
    this.timeoutMs = timeoutMs;
    this.sent = new Array(size).fill(0);
    this.mailbox = new Mailbox(rank, size, (d) => this.hold(d), (r) => this.peers?.ended[r] === true);
    this.received = this.mailbox.received;
    const self = this;
    this.agent = new CheckpointAgent(
      {
        rank,
        size,
        get isFinalized() {
          return self.finalized;
        },
        captureLibrary: () => this.captureState(),
        tellCoordinator: (m: ControlMessage) => {
          if (this.oob && !this.oob.isClosed) this.oob.send(m);
        },
        goDown: (reply, dump, handOff) => this.goDown(reply, dump, handOff),
        keptConnection: () => keptConnection(this.oob),
      },
      peers,
      restart ? () => restart(this.agent) : undefined,
    );
  }

  /** True once finalize() has been called. */
  get isFinalized(): boolean {
    return this.finalized;
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
    const { options: { into }, timeoutMs } = optionsOf(options, 'recv');
    if (into !== undefined && !(into instanceof Uint8Array)) throw new UsageError('recv: `into` must be a Buffer or Uint8Array');
    const raw = await this.recvRaw(source, tag, `recv(source=${source === ANY_SOURCE ? 'ANY' : source}, tag=${tag === ANY_TAG ? 'ANY' : tag})`, timeoutMs, into);
    return { source: raw.source, tag: raw.tag, data: decodeData(into ? placeInto(raw, into) : raw) as T };
  }

  // ---- collectives (every rank calls them in the same order) ----------------

  barrier(options: WaitOptions = {}): Promise<void> {
    return collectives.barrier(this, optionsOf(options, 'barrier').timeoutMs);
  }

  /** Root's value, on every rank. */
  bcast<T extends Data>(value: T | undefined, root = 0, options: WaitOptions = {}): Promise<T> {
    return collectives.bcast(this, value, root, optionsOf(options, 'bcast').timeoutMs) as Promise<T>;
  }

  /** Combines a number (or equal-length arrays of numbers, elementwise) from every rank; every rank gets the result. */
  allreduce<T extends number | number[]>(value: T, op: collectives.ReduceOp, options: WaitOptions = {}): Promise<T> {
    return collectives.allreduce(this, value, op, optionsOf(options, 'allreduce').timeoutMs) as Promise<T>;
  }

  /** Every rank's value, indexed by rank, on root; undefined elsewhere. */
  gather<T extends Data>(value: T, root = 0, options: WaitOptions = {}): Promise<T[] | undefined> {
    return collectives.gather(this, value, root, optionsOf(options, 'gather').timeoutMs) as Promise<T[] | undefined>;
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
    const timeoutMs = optionsOf(options, 'checkpoint').timeoutMs;
    if (this.finalized) throw new JobError(ErrorCodes.USAGE, 'the communicator was finalized');
    const agent = this.agent;
    const k = agent.requested.nextCall();
    if (this.rank === 0 && this.oob) {
      // The coordinator takes it once any checkpoint in progress is over.
      const reply = await this.oob.request({ type: 'request', op: 'checkpoint' }, timeoutMs ?? this.timeoutMs, 'the coordinator to accept a checkpoint request');
      if (reply.ok === false) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `checkpoint refused: ${String(reply.message)}`);
    }
    if (!this.oob) return null;
    this.hold(1);
    try {
      return await agent.requestedOutcome(k);
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
      unexpected: this.mailbox.unexpected.map((m) => ({ source: m.source, tag: m.tag, kind: m.kind, payload: m.payload.toString('base64') })),
      unsent: (this.peers?.unsent() ?? []).map((u) => ({ dest: u.dest, frame: u.frame.toString('base64') })),
    };
  }

  /** @internal a restarted rank takes up where the snapshot left off */
  restoreState(state: LibraryState): void {
    state.sent.forEach((n, i) => (this.sent[i] = n));
    state.received.forEach((n, i) => (this.received[i] = n));
    for (const m of state.unexpected) {
      this.mailbox.unexpected.push({ source: m.source, tag: m.tag, kind: m.kind as FrameKind, payload: Buffer.from(m.payload, 'base64') });
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
      if (this.oob && !this.oob.isClosed && !this.mailbox.failure) {
        await this.oob.request({ type: 'finalize', sent: this.sent, received: this.received }, CONNECT_TIMEOUT_MS, 'the coordinator to acknowledge finalize');
      }
    } finally {
      clearInterval(keep);
      this.fail(new JobError(ErrorCodes.USAGE, 'the communicator was finalized'));
      this.oob?.close();
      this.peers?.close();
    }
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

  /** criu: leaves the job for a dump and rejoins after it (coordinator-link.ts). */
  private async goDown(reply: () => Promise<void>, dump: DumpRun, handOff?: boolean): Promise<void> {
    const { peers, link } = this;
    if (!peers || !link) throw new CkptError(ErrorCodes.INTERNAL, 'a singleton has nothing to dump');
    const leaveCoordinator = () => {
      this.oobLeaving = true;
      return this.oob;
    };
    const comm = this;
    const { rank, size } = this;
    // keepCoordinator: the connection kept across the dump is listened to again, as before it.
    const keepCoordinator = () => void (this.oobLeaving = false);
    const host = { rank, size, link, peers, leaveCoordinator, keepCoordinator, attachCoordinator: (oob: Channel) => this.attachCoordinator(oob), restored: () => this.agent.restored() };
    // The job id changes in a restored copy (a restarted job's).
    Object.defineProperty(host, 'jobId', { get: () => comm.jobId, set: (id: string) => (comm.jobId = id), enumerable: true });
    await goDown(host as typeof host & { jobId: string }, reply, dump, handOff);
  }

  // ---- internal: used by collectives and the peer network ----------------------

  /** @internal */
  async sendRaw(dest: number, kind: FrameKind, tag: number, payload: Uint8Array): Promise<void> {
    this.checkRank(dest, 'send to');
    const fatal = this.mailbox.failure;
    if (fatal) throw fatal;
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
    return this.mailbox.recv(source, tag, what, timeoutMs ?? this.timeoutMs, into);
  }

  /** @internal */
  claimBody(source: number, kind: FrameKind, tag: number, length: number): Buffer | undefined {
    return this.mailbox.claimBody(source, kind, tag, length);
  }

  /** @internal */
  deliver(m: RawMessage): void {
    this.mailbox.deliver(m);
  }

  /** @internal a peer finished: fail receives that nothing can satisfy any more. */
  peerGone(rank: number, sentToUs: number | null | undefined): void {
    // The coordinator's word (a count or null; undefined: the link's own end).
    if (sentToUs !== undefined) this.peers?.exited(rank);
    this.mailbox.peerGone(rank, sentToUs);
  }

  /** @internal the job is over for this rank: every pending and later operation fails with `err`. */
  fail(err: CkptError): void {
    this.mailbox.fail(err);
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

export { init, type InitOptions } from './init.js';
