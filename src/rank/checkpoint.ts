// The rank's side of a coordinated checkpoint.
//
// self — the coordinator drives it with requests over the OOB channel:
//   ckpt-prepare  → reply { safePoints }     a checkpoint is pending
//   arrived {seq, safePoint, written}        unasked, at the first safe point after
//                                            the prepare: sends are held from then on,
//                                            and the rank waits there for the target
//   ckpt-reach    → reply { written }        (only to a rank whose first safe point is
//                                            short of the target) once it stands at
//                                            safe point `target`
//   ckpt-save {target, expected, rankDir, inlineBytes}
//                 → reply { safePoint, saveMs, inline | files }
//                                            once every frame peers wrote to us
//                                            has been read (nothing in flight):
//                                            save() and the library's own state,
//                                            in the reply when they are small
//                                            (inline, base64: the coordinator packs
//                                            them), else into rankDir (files)
//   ckpt-resume   → reply {}                 committed (continue) or aborted
//                                            (the coordinator does not wait for it)
// Every rank stops at the same safe-point count (one past the highest any rank had
// when the request came): a rank stopping earlier could starve a peer's recv.
//
// criu — no safe points; wherever the rank's code is:
//   ckpt-prepare {crs:'criu'} → reply { written, pid, tree, stdio, rejoin }
//                                    sends are held from now on; `rejoin` names
//                                    a pipe this rank keeps open (pipe:[ino])
//   ckpt-drain    → as for self, then the prepare hooks
//   ckpt-dump     → reply {} ("going down"): the rank closes its coordinator and
//                   peer connections, CRIU dumps it (comm.ts), it rejoins the
//                   coordinator with hello {rejoin:true, dumped:'ok'|'error'}
//   ckpt-resume {outcome, peers} → reconnect to the peers, send what was held
// A restored copy wakes inside the dump, reads {coord, job, secret} from the
// rejoin pipe (the restart pre-fills it), joins the new coordinator like a new
// rank, reconnects to its peers on the welcome, and reports `restart`.
import { chmodSync, closeSync, fstatSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { selfCallbacks } from '../crs/self/index.js';
import { runHooks, type CheckpointResult } from '../crs/hooks.js';
import { currentPid, recordOf } from '../store/record.js';
import { native } from '../util/native.js';
import { faultPoint, FAULT_POINTS, type FaultPoint } from '../util/faults.js';
import { fsyncPath, writeFileDurable } from '../util/fsx.js';
import { hashBytes } from '../store/checksum.js';
import { readPackSlice, type PackSlice } from '../store/pack.js';
import type { ControlMessage } from '../wire/frame.js';
import type { PeerNetwork } from './peers.js';
import type { LibraryState } from './state.js';

export const LIBRARY_STATE = 'library.json';
const STATE_JSON = 'state.json';
const STATE_BIN = 'state.bin';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

interface Pending {
  crs: 'self' | 'criu';
  seq: number;
  store: string;
  dir: string;
  target?: number;
  targetKnown: Deferred<void>;
  /** This rank stands at the target safe point. */
  arrived: Deferred<void>;
  /** self: the first safe point after the prepare was reported to the coordinator. */
  reported?: boolean;
  /** What the waiting safePoint() resolves to. */
  outcome: Deferred<CheckpointResult | null>;
  /** criu: the read end of the rejoin pipe, and whether our connections are down. */
  rejoinFd?: number;
  disconnected?: boolean;
  pid?: number;
  hostname?: string;
  /** criu: keeps the process alive until the checkpoint is over. */
  keepAlive?: NodeJS.Timeout;
  /** The ordinal of the rank-requested checkpoint (comm.checkpoint()) this is, if it is one. */
  requested?: number;
  /**
   * Resolved when the checkpoint is over for this rank (ckpt-resume, or a new
   * prepare that finds it abandoned): requests still waiting in it give up, and
   * nothing more is written into its snapshot.
   */
  ended: Deferred<void>;
  isEnded?: boolean;
  /** Requests of this checkpoint still being handled (an abort waits for them before it is answered). */
  work: Set<Promise<unknown>>;
}

/** What a restarted job hands its restored ranks through their rejoin pipes. */
export interface RejoinInfo {
  coord: string;
  job: string;
  secret: string;
}

/** A rank restarted from a job snapshot, until its first safe point. */
export interface RestartFrom {
  dir: string;
  store: string;
  seq: number;
  rankDir: string;
  /** A small rank: save()'s bytes are this slice of the job's pack file. */
  packed?: { path: string; state: PackSlice; binary: boolean };
  safePoint: number;
  previousPid: number;
  previousHostname: string;
}

/** The parts of the communicator a checkpoint needs. */
export interface CheckpointHost {
  readonly rank: number;
  readonly isFinalized: boolean;
  captureState(): LibraryState;
  /** Sends a message to the coordinator, unasked (self: `arrived`). */
  tellCoordinator(message: ControlMessage): void;
}

export class CheckpointAgent {
  safePoints = 0;
  private pending: Pending | undefined;
  private pendingWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  /** comm.checkpoint() calls so far; its k-th call is answered by the k-th rank-requested checkpoint. */
  private calls = 0;
  private requestedSeen = 0;
  private readonly requested: { crs: Deferred<'self' | 'criu'>; result: Deferred<CheckpointResult | null>; prepared: boolean }[] = [];

  constructor(
    private readonly host: CheckpointHost,
    private readonly peers: PeerNetwork | undefined,
    private restartFrom: RestartFrom | undefined,
  ) {}

  get isPending(): boolean {
    return this.pending !== undefined;
  }

  /** Resolves once a checkpoint has been announced (ckpt-prepare). */
  whenPending(): Promise<void> {
    if (this.pending) return Promise.resolve();
    return new Promise((resolve) => this.pendingWaiters.push(resolve));
  }

  /** A comm.checkpoint() call's ordinal. */
  nextCall(): number {
    return this.calls++;
  }

  private requestSlot(k: number) {
    return (this.requested[k] ??= { crs: deferred(), result: deferred(), prepared: false });
  }

  /** Resolves with the checkpointer once the k-th rank-requested checkpoint has been prepared. */
  requestedPrepared(k: number): Promise<'self' | 'criu'> {
    return this.requestSlot(k).crs.promise;
  }

  isRequestedPrepared(k: number): boolean {
    return this.requested[k]?.prepared === true;
  }

  /** The outcome of the k-th rank-requested checkpoint. */
  requestedResult(k: number): Promise<CheckpointResult | null> {
    return this.requestSlot(k).result.promise;
  }

  /** The ordinal of the pending checkpoint, if a rank requested it. */
  get pendingRequested(): number | undefined {
    return this.pending?.requested;
  }

  private settle(p: Pending, result: CheckpointResult | null): void {
    p.outcome.resolve(result);
    if (p.requested !== undefined) this.requestSlot(p.requested).result.resolve(result);
  }

  /** The checkpointer of the pending checkpoint, if one is pending. */
  get pendingCrs(): 'self' | 'criu' | undefined {
    return this.pending?.crs;
  }

  /** Resolves once no checkpoint is pending (finalize waits for it). */
  whenIdle(): Promise<void> {
    if (!this.pending) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The outcome of the pending checkpoint (criu: comm.checkpoint() waits here). */
  outcome(): Promise<CheckpointResult | null> {
    return this.pending ? this.pending.outcome.promise : Promise.resolve(null);
  }

  private clear(p: Pending): void {
    if (this.pending === p) this.pending = undefined;
    if (p.keepAlive) clearInterval(p.keepAlive);
    if (p.rejoinFd !== undefined) {
      try {
        closeSync(p.rejoinFd);
      } catch {
        // already closed
      }
      p.rejoinFd = undefined;
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** ckpt-dump (criu): checks the request and runs the prepare hooks; returns the rank's directory. */
  async beginDump(m: ControlMessage): Promise<{ rankDir: string }> {
    const p = this.need();
    if (p.crs !== 'criu') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: ckpt-dump in a ${p.crs} checkpoint`);
    p.disconnected = true;
    return { rankDir: String(m.rankDir) };
  }

  /** The restored copy: where the restarted job's coordinator is (the restart pre-filled the rejoin pipe). */
  readRejoin(): RejoinInfo {
    const p = this.need();
    if (p.rejoinFd === undefined) throw new CkptError(ErrorCodes.INTERNAL, 'no rejoin pipe');
    const text = readFileSync(p.rejoinFd, 'utf8');
    closeSync(p.rejoinFd);
    p.rejoinFd = undefined;
    let info: RejoinInfo;
    try {
      info = JSON.parse(text) as RejoinInfo;
    } catch {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank} was restored without rejoin information (read ${text.length} bytes)`);
    }
    if (typeof info.coord !== 'string' || typeof info.job !== 'string' || typeof info.secret !== 'string') {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank} was restored with incomplete rejoin information`);
    }
    return info;
  }

  /** The restored copy has rejoined and reconnected: sends go out again, `restart` is reported. */
  async finishCriuRestart(): Promise<void> {
    const p = this.need();
    this.clear(p);
    this.peers?.resume();
    const result: CheckpointResult = {
      state: 'restart',
      crs: 'criu',
      pid: currentPid(),
      previousPid: p.pid ?? currentPid(),
      hostname: hostname(),
      previousHostname: p.hostname ?? hostname(),
      snapshot: { store: p.store, seq: p.seq, dir: p.dir },
    };
    await runHooks('restart', result);
    this.settle(p, result);
  }

  /**
   * A safe point: where everything the program needs is in what save() returns.
   * Resolves null at once unless a checkpoint stops here; then it resolves with
   * the checkpoint's result (continue), or — first thing in a restarted rank — restart.
   */
  async safePoint(): Promise<CheckpointResult | null> {
    if (this.restartFrom) return this.finishRestart(this.restartFrom);
    this.safePoints++;
    const p = this.pending;
    if (!p || p.crs !== 'self') return null;
    if (p.target === undefined) {
      if (!p.reported) {
        // Perhaps the target: hold sends, so that what we report written stays true,
        // and say where we stand (the coordinator then needs no reach round for us).
        p.reported = true;
        await faultPoint('arrived', this.host.rank);
        this.peers?.pause();
        this.host.tellCoordinator({ type: 'arrived', seq: p.seq, safePoint: this.safePoints, written: [...(this.peers?.written ?? [])] });
      }
      await p.targetKnown.promise;
    }
    if (this.pending !== p || p.target === undefined || this.safePoints !== p.target) {
      // Not this one (or the checkpoint is over): sends go out again.
      if (this.pending === p) this.peers?.resume();
      return null;
    }
    this.peers?.pause();
    p.arrived.resolve();
    return p.outcome.promise;
  }

  /**
   * Handles one ckpt-* request from the coordinator; resolves to the reply's body.
   * A request of the pending checkpoint is tracked until it is answered: an abort
   * (ckpt-resume) is answered only once none of them can still write into the
   * snapshot, so the coordinator removes the partial directory after every rank
   * has stopped touching it.
   */
  handle(m: ControlMessage): Promise<Record<string, unknown>> {
    const p = this.pending;
    const run = this.handleOp(m);
    if (p && m.op !== 'ckpt-prepare' && m.op !== 'ckpt-resume') {
      p.work.add(run);
      const done = () => p.work.delete(run);
      run.then(done, done);
    }
    return run;
  }

  /** The checkpoint is over for this rank: waits in it give up; then its requests are waited for. */
  private async end(p: Pending): Promise<void> {
    if (!p.isEnded) {
      p.isEnded = true;
      p.ended.resolve();
    }
    await Promise.allSettled([...p.work]);
  }

  /** Waits for `promise`, unless checkpoint `p` ends first (then fails: nothing more is done for it). */
  private until<T>(p: Pending, promise: Promise<T>): Promise<T> {
    this.check(p);
    return Promise.race([
      promise,
      p.ended.promise.then((): never => {
        throw this.endedError();
      }),
    ]).then((v) => {
      this.check(p);
      return v;
    });
  }

  /** Fails once checkpoint `p` is over (aborted): checked before every write into its snapshot. */
  private check(p: Pending): void {
    if (p.isEnded || this.pending !== p) throw this.endedError();
  }

  private endedError(): CkptError {
    return new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${this.host.rank}: the checkpoint was aborted`);
  }

  private async handleOp(m: ControlMessage): Promise<Record<string, unknown>> {
    const point = typeof m.op === 'string' ? m.op.replace(/^ckpt-/, '') : '';
    if ((FAULT_POINTS as readonly string[]).includes(point)) await faultPoint(point as FaultPoint, this.host.rank);
    switch (m.op) {
      case 'ckpt-prepare': {
        const stale = this.pending;
        if (stale) {
          // A criu rank back from its dump needs the resume's addresses to link up again.
          if (stale.disconnected) throw new CkptError(ErrorCodes.CHECKPOINT_BUSY, `rank ${this.host.rank}: a checkpoint is already pending`);
          // The coordinator takes one checkpoint at a time and ends each with
          // ckpt-resume before the next prepare: this one was abandoned (its
          // resume lost). It ends here as an abort would end it.
          this.clear(stale);
          this.pending = undefined;
          await this.end(stale);
          stale.targetKnown.resolve();
          this.settle(stale, null);
          this.peers?.resume();
          if (this.pending) throw new CkptError(ErrorCodes.CHECKPOINT_BUSY, `rank ${this.host.rank}: a checkpoint is already pending`);
        }
        const crs = m.crs === 'criu' ? 'criu' : 'self';
        const p: Pending = {
          crs,
          seq: Number(m.seq),
          store: String(m.store),
          dir: String(m.dir),
          targetKnown: deferred(),
          arrived: deferred(),
          outcome: deferred(),
          ended: deferred(),
          work: new Set(),
        };
        const announce = () => {
          if (m.requested === true) {
            p.requested = this.requestedSeen++;
            const slot = this.requestSlot(p.requested);
            slot.prepared = true;
            slot.crs.resolve(crs);
          }
          for (const w of this.pendingWaiters.splice(0)) w();
        };
        if (crs === 'self') {
          this.pending = p;
          announce();
          return { safePoints: this.safePoints };
        }
        // criu: no safe point to reach; sends are held from now on.
        if (this.host.isFinalized) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${this.host.rank} has finalized`);
        // Pending at once: requests are handled in their order, and an abort that
        // arrives while the links come up must find this checkpoint to end it.
        this.pending = p;
        if (this.peers && !this.peers.linked) {
          try {
            await this.peers.whenLinked(10_000);
          } catch (err) {
            if (this.pending === p) {
              this.clear(p);
              this.settle(p, null);
            }
            throw err;
          }
          if (this.pending !== p) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${this.host.rank}: the checkpoint was aborted`);
        }
        const n = native();
        const [readEnd, writeEnd] = n.pipe();
        n.close(writeEnd);
        p.rejoinFd = readEnd;
        p.keepAlive = setInterval(() => {}, 1 << 30);
        const record = recordOf(currentPid());
        p.pid = record.pid;
        p.hostname = hostname();
        this.peers?.pause();
        announce();
        return {
          written: [...(this.peers?.written ?? [])],
          pid: record.pid,
          tree: record.tree,
          stdio: record.stdio,
          shellJob: record.shellJob,
          networkLock: 'skip',
          rejoin: `pipe:[${fstatSync(readEnd).ino}]`,
        };
      }
      case 'ckpt-reach': {
        const p = this.need();
        p.target = Number(m.target);
        p.targetKnown.resolve();
        await this.until(p, p.arrived.promise);
        return { written: [...(this.peers?.written ?? [])] };
      }
      case 'ckpt-drain': {
        const p = this.need();
        await this.drained(p, m.expected);
        // criu: the prepare hooks run here, not at the dump: a hook that fails then
        // aborts the checkpoint before any rank has gone down (a rank refusing its
        // dump while others are down would leave their links to it broken).
        if (p.crs === 'criu') await this.until(p, runHooks('prepare', { crs: 'criu', store: p.store, seq: p.seq }));
        return {};
      }
      case 'ckpt-save': {
        const p = this.need();
        if (p.target === undefined) {
          // We reported standing at the target, unasked: this confirms it.
          if (!p.reported || !Number.isSafeInteger(m.target)) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: ckpt-save before its safe point`);
          p.target = m.target as number;
          p.targetKnown.resolve();
        }
        await this.until(p, p.arrived.promise);
        // self: the drain is part of the save request (one round fewer).
        if (m.expected !== undefined) await this.drained(p, m.expected);
        const t0 = performance.now();
        await this.until(p, runHooks('prepare', { crs: 'self', store: p.store, seq: p.seq }));
        const cb = selfCallbacks();
        if (!cb) {
          throw new CkptError(ErrorCodes.SELF_NOT_REGISTERED, `rank ${this.host.rank} has no save()/load() callbacks`, {
            hint: "call registerSelf({ save, load }) from 'ckpt' before the first safePoint()",
          });
        }
        // An abort that comes while save() runs is answered once it has returned: nothing is written then.
        const state = await cb.save();
        await faultPoint('saved', this.host.rank);
        this.check(p);
        const binary = state instanceof Uint8Array;
        const data = binary ? state : Buffer.from(JSON.stringify(state ?? null));
        const library = Buffer.from(JSON.stringify({ ...this.host.captureState(), safePoint: this.safePoints }));
        const saveMs = () => Math.round((performance.now() - t0) * 100) / 100;
        const inlineBytes = Number.isSafeInteger(m.inlineBytes) ? (m.inlineBytes as number) : 0;
        if (data.byteLength + library.byteLength <= inlineBytes) {
          // Small: in the reply. The coordinator packs every small rank into one file,
          // one fsync instead of one per rank (16 ranks fsyncing at once took ~25 ms here).
          const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
          return { safePoint: this.safePoints, saveMs: saveMs(), inline: { binary, state: b64(data), library: b64(library) } };
        }
        // Large: each rank makes its own files durable, all ranks at once.
        const rankDir = String(m.rankDir);
        // Only inside the snapshot's directory as it is: if the checkpoint was
        // aborted and that directory removed, nothing may bring it back.
        try {
          mkdirSync(rankDir, { mode: 0o700 });
        } catch (err) {
          if (errnoCode(err) === 'ENOENT') throw this.endedError();
          if (errnoCode(err) !== 'EEXIST') throw err;
        }
        chmodSync(rankDir, 0o700);
        const files: { name: string; data: Uint8Array }[] = [
          { name: binary ? STATE_BIN : STATE_JSON, data },
          { name: LIBRARY_STATE, data: library },
        ];
        const written = [];
        for (const f of files) {
          this.check(p);
          writeFileDurable(join(rankDir, f.name), f.data);
          written.push({ name: f.name, size: f.data.byteLength, xxh64: await hashBytes(f.data) });
        }
        this.check(p);
        fsyncPath(rankDir);
        // Synced and hashed here: the coordinator's commit takes them as they are.
        return { safePoint: this.safePoints, files: written, saveMs: saveMs() };
      }
      case 'ckpt-resume': {
        const p = this.pending;
        if (p?.crs === 'criu' && this.peers) {
          const addresses = Array.isArray(m.peers) && m.peers.length === this.peers.size ? (m.peers as string[]) : undefined;
          if (p.disconnected) {
            if (!addresses) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: ckpt-resume without the peers' addresses`);
            this.peers.connectAll(addresses);
          } else if (addresses) {
            // This rank stayed up while others went down (an aborted checkpoint).
            this.peers.relink(addresses);
          }
        }
        if (p) this.clear(p);
        this.pending = undefined;
        this.peers?.resume();
        if (!p) return {};
        p.targetKnown.resolve();
        if (m.outcome !== 'continue') {
          // Answered once none of this checkpoint's requests can still write into
          // its snapshot: the coordinator removes the partial directory after
          // every rank has answered (a save() under way is waited for, and writes nothing).
          await this.end(p);
          this.settle(p, null);
          return {};
        }
        void this.end(p);
        const host = hostname();
        const pid = currentPid();
        const result: CheckpointResult = {
          state: 'continue',
          crs: p.crs,
          pid,
          previousPid: pid,
          hostname: host,
          previousHostname: host,
          snapshot: { store: p.store, seq: p.seq, dir: p.dir },
        };
        await runHooks('continue', result);
        this.settle(p, result);
        return {};
      }
      default:
        throw new CkptError(ErrorCodes.OOB_PROTOCOL, `unknown checkpoint operation '${String(m.op)}'`);
    }
  }

  /** Resolves once this rank has read, from each rank i, `expected[i]` frames: nothing is in flight to it. Fails if `p` ends first. */
  private async drained(p: Pending, expected: unknown): Promise<void> {
    const peers = this.peers;
    if (!peers) return;
    if (!Array.isArray(expected) || expected.length !== peers.size || !expected.every((n) => Number.isInteger(n) && n >= 0)) {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: a drain request without one frame count per rank`);
    }
    const counts = expected as number[];
    const done = () => counts.every((n, i) => i === this.host.rank || peers.read[i]! >= n);
    if (done()) return;
    await this.until(
      p,
      new Promise<void>((resolve) => {
        const onRead = () => {
          if (done()) {
            peers.onRead = undefined;
            resolve();
          }
        };
        peers.onRead = onRead;
        // An abort stops the watch (the promise is then abandoned).
        void p.ended.promise.then(() => {
          if (peers.onRead === onRead) peers.onRead = undefined;
        });
      }),
    );
  }

  private need(): Pending {
    if (!this.pending) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: no checkpoint is pending`);
    return this.pending;
  }

  private async finishRestart(from: RestartFrom): Promise<CheckpointResult> {
    this.restartFrom = undefined;
    this.safePoints = from.safePoint;
    const cb = selfCallbacks();
    if (!cb) {
      throw new CkptError(ErrorCodes.SELF_NOT_REGISTERED, `rank ${this.host.rank} restarts from a snapshot but has no load() callback`, {
        hint: "call registerSelf({ save, load }) from 'ckpt' before the first safePoint()",
      });
    }
    let state: unknown;
    if (from.packed) {
      const bytes = readPackSlice(from.packed.path, from.packed.state);
      state = from.packed.binary ? new Uint8Array(bytes) : JSON.parse(bytes.toString('utf8'));
    } else {
      try {
        state = JSON.parse(readFileSync(join(from.rankDir, STATE_JSON), 'utf8'));
      } catch {
        state = new Uint8Array(readFileSync(join(from.rankDir, STATE_BIN)));
      }
    }
    await cb.load(state);
    const result: CheckpointResult = {
      state: 'restart',
      crs: 'self',
      pid: currentPid(),
      previousPid: from.previousPid,
      hostname: hostname(),
      previousHostname: from.previousHostname,
      snapshot: { store: from.store, seq: from.seq, dir: from.dir },
    };
    await runHooks('restart', result);
    return result;
  }
}
