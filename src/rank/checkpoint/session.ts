// One checkpoint as a rank lives it, with an explicit state. The coordinator's
// requests move it along; a request that does not fit the state is a protocol
// error (ECKPT_OOB_PROTOCOL), never a silent branch. docs/RUNTIME.md.
//
//   prepared ──(self) at-target ── saved ──┐
//      │                                   ├── ended (resume: continue or abort)
//      └──(criu) drained ── down ──────────┘
import { CkptError, ErrorCodes } from '../../errors.js';
import type { CheckpointResult } from '../../crs/hooks.js';
import type { RankCheckpointer, RankSession } from '../../crs/job.js';
import { directoryWriter, type SnapshotWriter } from '../../store/writer.js';

export type SessionState = 'prepared' | 'at-target' | 'saved' | 'drained' | 'down' | 'ended';

type Next = Partial<Record<SessionState, readonly SessionState[]>>;
/** At a safe point (self) and wherever it is (criu): the two paths of the diagram. */
const AT_SAFE_POINT: Next = { prepared: ['at-target', 'ended'], 'at-target': ['saved', 'ended'], saved: ['ended'] };
const ANYWHERE: Next = { prepared: ['drained', 'ended'], drained: ['down', 'ended'], down: ['ended'] };

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export class Session implements RankSession {
  state: SessionState = 'prepared';
  /** self: the safe point every rank stops at, once known. */
  target?: number;
  readonly targetKnown = deferred<void>();
  /** self: this rank stands at the target safe point. */
  readonly arrived = deferred<void>();
  /** self: the first safe point after the prepare was reported to the coordinator. */
  reported = false;
  /** The user's onPrepare hooks ran (onContinue then runs, `aborted` if it was). */
  hooksPrepared = false;
  /** What the waiting safePoint() or comm.checkpoint() resolves to. */
  readonly outcome = deferred<CheckpointResult | null>();
  /** The ordinal of the rank-requested checkpoint (comm.checkpoint()) this is, if it is one. */
  requested?: number;
  /** Resolved when the checkpoint is over for this rank: waits in it give up, nothing more is written. */
  readonly ended = deferred<void>();
  /** No longer the rank's pending checkpoint (its state may still say otherwise until it ends). */
  detached = false;
  /** Requests of this checkpoint still being handled (an abort waits for them before it is answered). */
  readonly work = new Set<Promise<unknown>>();
  /** self, for data.reachMs: when the prepare came, how long the rank then waited to learn the target, when it stood at it. */
  private readonly preparedAt = performance.now();
  heldMs = 0;
  atTargetAt?: number;

  constructor(
    readonly rank: number,
    readonly crs: string,
    readonly seq: number,
    readonly store: string,
    readonly dir: string,
    readonly half: RankCheckpointer,
  ) {}

  /** Moves to `next`; `op` names what asked for it (for the error). */
  to(next: SessionState, op: string): void {
    if (!((this.half.atSafePoint ? AT_SAFE_POINT : ANYWHERE)[this.state] ?? []).includes(next)) {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.rank}: ${op} in state '${this.state}' of checkpoint ${this.seq} (${this.crs})`);
    }
    this.state = next;
    if (next === 'ended') this.ended.resolve();
  }

  get reachMs(): number | undefined {
    return this.atTargetAt === undefined ? undefined : Math.round((this.atTargetAt - this.preparedAt - this.heldMs) * 100) / 100;
  }

  get isOver(): boolean {
    return this.state === 'ended' || this.detached;
  }

  check(): void {
    if (this.isOver) throw this.endedError();
  }

  until<T>(promise: Promise<T>): Promise<T> {
    this.check();
    return Promise.race([
      promise,
      this.ended.promise.then((): never => {
        throw this.endedError();
      }),
    ]).then((v) => {
      this.check();
      return v;
    });
  }

  writer(rankDir: string): SnapshotWriter {
    return directoryWriter(rankDir);
  }

  endedError(): CkptError {
    return new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${this.rank}: the checkpoint was aborted`);
  }
}
