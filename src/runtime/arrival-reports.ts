// self checkpoints: the safe point each rank reported standing at, unasked, as soon
// as it got there (with what it had written to each peer), and who waits for it.
// Ranks on other nodes report to their agent instead (agent/rank-arrivals.ts): the
// reach round asks the agents for theirs (Coordinator.requestAll, `arrival`).
import { CkptError, ErrorCodes } from '../errors.js';
import type { ControlMessage } from '../wire/frame.js';
import { RankWaits } from './rank-waits.js';

interface Arrival {
  seq: number;
  safePoint: number;
  written: number[];
}

export class ArrivalReports {
  private readonly arrivals = new Map<number, Arrival>();
  private readonly waits = new RankWaits<number[], { seq: number; safePoint: number }>();

  constructor(private readonly size: number) {}

  /** Rank `rank`'s `arrived` message; a malformed one is a protocol error. */
  reported(rank: number, m: ControlMessage): void {
    const ints = (a: unknown): a is number[] => Array.isArray(a) && a.length === this.size && a.every((n) => Number.isSafeInteger(n) && n >= 0);
    if (!Number.isSafeInteger(m.seq) || !Number.isSafeInteger(m.safePoint) || !ints(m.written)) {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${rank} sent a malformed 'arrived'`);
    }
    const a: Arrival = { seq: m.seq as number, safePoint: m.safePoint as number, written: m.written };
    this.arrivals.set(rank, a);
    this.waits.resolve(rank, a.written, (w) => w.seq === a.seq && w.safePoint === a.safePoint);
  }

  /** What `rank` had written once it reports safe point `safePoint` of checkpoint `seq` (perhaps already done). */
  wait(rank: number, seq: number, safePoint: number, timeoutMs: number): Promise<number[]> {
    const a = this.arrivals.get(rank);
    if (a && a.seq === seq && a.safePoint === safePoint) return Promise.resolve(a.written);
    return this.waits.wait(rank, { seq, safePoint }, timeoutMs, `rank ${rank} to reach safe point ${safePoint}`);
  }

  /** The checkpoint is over: its reports are forgotten, and nobody waits for one any longer. */
  clear(): void {
    this.arrivals.clear();
    this.waits.rejectAll(() => new CkptError(ErrorCodes.CHECKPOINT_FAILED, 'the checkpoint is over'));
  }

  reject(rank: number, err: Error): void {
    this.waits.reject(rank, err);
  }

  rejectAll(err: (rank: number) => Error): void {
    this.waits.rejectAll(err);
  }
}
