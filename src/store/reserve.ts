// The next snapshot's directory, made ahead. A job that checkpoints again and again
// (--interval, the scheduler's signal, `ckpt checkpoint`) makes its next partial
// directory once a checkpoint is over, off the pause: made at the checkpoint, its
// mkdir alone took 1.5–7 ms of a 1 × 2 criu checkpoint on the Slurm test cluster
// (ext4 under the dumps' writes; 0.1 ms on an idle disk). It is an ordinary partial
// snapshot of a live writer (layout.ts): never listed, never swept while the job runs,
// removed when the job ends, swept as any other if the job is killed. It is taken
// only if nothing in the store changed since it was made: its seq is then still next.
import { fstatSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PRIVATE_DIR_MODE } from '../util/fsx.js';
import type { PendingSnapshot } from './layout.js';
import { abortSnapshot, beginSnapshot } from './write.js';

interface Reserved {
  pending: PendingSnapshot;
  /** The checkpointer it was made for: its subdirectories are that checkpointer's layout. */
  crs: string;
  /** The store directory's change time and links once it was made: any later entry, rename or removal changes them. */
  storeChanged: string;
}

export class SnapshotReserve {
  private next: Reserved | undefined;

  /** A new pending snapshot in `store` for `crs`: the one made ahead if it is still good and for `crs`, else one made now. */
  take(store: string, crs: string): PendingSnapshot {
    const next = this.next;
    this.next = undefined;
    if (next && next.crs === crs && resolve(store) === next.pending.store && stillGood(next)) return next.pending;
    if (next) discard(next.pending);
    return beginSnapshot(store);
  }

  /**
   * Makes the next one for `crs`, with `subdirs` in it (a criu job's rank-N/images: a
   * rank then makes no directory in its pause). A store that cannot take it says so at
   * the next take(), not here.
   */
  refill(store: string, crs: string, subdirs: readonly string[] = []): void {
    this.discard();
    try {
      const pending = beginSnapshot(store);
      this.next = { pending, crs, storeChanged: changeOf(pending.handles!.store.fd) };
      // Inside it: the store's change time does not move.
      for (const sub of subdirs) mkdirSync(pending.handles!.dir.at(sub), { mode: PRIVATE_DIR_MODE });
    } catch {
      // met again by take(), where it is reported
      this.discard();
    }
  }

  /** Removes the one made ahead (the job ends). */
  discard(): void {
    if (this.next) discard(this.next.pending);
    this.next = undefined;
  }
}

/** ctime alone may not move within one clock tick: a directory made or removed also changes the link count. */
function changeOf(fd: number): string {
  const st = fstatSync(fd, { bigint: true });
  return `${st.ctimeNs}/${st.nlink}`;
}

function stillGood(r: Reserved): boolean {
  const h = r.pending.handles;
  if (!h) return false;
  try {
    return changeOf(h.store.fd) === r.storeChanged && fstatSync(h.dir.fd).nlink > 0;
  } catch {
    return false;
  }
}

function discard(pending: PendingSnapshot): void {
  try {
    abortSnapshot(pending);
  } catch {
    // gone already: a partial directory is never listed, and a dead writer's is swept
  }
}
