// comm.checkpoint(): a rank's k-th call is answered by the job's k-th
// rank-requested checkpoint. This matches calls to checkpoints as they are prepared.
import type { CheckpointResult } from '../../crs/hooks.js';
import { deferred, type Deferred } from './session.js';

interface Slot {
  prepared: Deferred<void>;
  result: Deferred<CheckpointResult | null>;
  isPrepared: boolean;
}

export class RequestedCheckpoints {
  private calls = 0;
  private seen = 0;
  private readonly slots: Slot[] = [];

  private slot(k: number): Slot {
    return (this.slots[k] ??= { prepared: deferred(), result: deferred(), isPrepared: false });
  }

  /** A comm.checkpoint() call's ordinal. */
  nextCall(): number {
    return this.calls++;
  }

  /** A rank-requested checkpoint was prepared: its ordinal. */
  announce(): number {
    const k = this.seen++;
    const s = this.slot(k);
    s.isPrepared = true;
    s.prepared.resolve();
    return k;
  }

  whenPrepared(k: number): Promise<void> {
    return this.slot(k).prepared.promise;
  }

  isPrepared(k: number): boolean {
    return this.slots[k]?.isPrepared === true;
  }

  result(k: number): Promise<CheckpointResult | null> {
    return this.slot(k).result.promise;
  }

  settle(k: number, result: CheckpointResult | null): void {
    this.slot(k).result.resolve(result);
  }
}
