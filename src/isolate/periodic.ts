// `ckpt run --isolate --interval S --keep K`: the whole tree checkpointed every S
// seconds, left running, into the job's store; the newest K of its snapshots kept.
// The schedule (util/periodic.ts) and retention (store/retention.ts) are those of
// rank jobs and processes.
import type { Manifest } from '../store/manifest.js';
import { keepNewest } from '../store/retention.js';
import { periodic, type Periodic } from '../util/periodic.js';
import { checkpointIsolatedJob } from './checkpoint.js';
import type { IsolatedJob } from './job.js';

export interface IsolatedScheduleOptions {
  intervalMs: number;
  keep?: number;
  /** The job's name and store. */
  name: string;
  store: string;
  /** The job now (a restarted job replaces the first). */
  job: () => IsolatedJob;
  /** False while another checkpoint runs or the job is ending: that tick is skipped. */
  mayRun: () => boolean;
  log: (line: string) => void;
}

/** This isolated job's snapshots in a store (by name: a restored job keeps it). */
export function isSnapshotOfIsolated(name: string): (m: Manifest) => boolean {
  return (m) => m.kind === 'process' && m.process.isolation?.name === name;
}

export function isolatedSchedule(o: IsolatedScheduleOptions): Periodic {
  return periodic(o.intervalMs, async () => {
    if (!o.mayRun()) return;
    const job = o.job();
    try {
      await checkpointIsolatedJob({ job: job.id, dir: o.store, then: 'continue' });
      if (o.keep) keepNewest(o.store, o.keep, isSnapshotOfIsolated(o.name));
    } catch (err) {
      // A job that ended meanwhile: nothing to say.
      if (o.mayRun() && o.job() === job) o.log(`ckpt: the periodic checkpoint of isolated job ${o.name} failed, the job goes on: ${(err as Error).message}`);
    }
  });
}
