// An isolated job run unattended, as runtime/supervise.ts runs a rank job: SIGINT,
// SIGTERM and SIGHUP end it (a second one kills its namespace); a checkpoint signal
// checkpoints the whole tree and ends it (EXIT_CHECKPOINTED), with a requeue if asked;
// a job that fails (not ended by us) is restored from its newest snapshot, at most
// `maxRestarts` times; with `intervalMs`, it is checkpointed periodically (periodic.ts).
import { newestSnapshot, type Snapshot } from '../store/store.js';
import { EXIT_CHECKPOINTED } from '../registry/jobs.js';
import { requeueSlurmJob } from '../util/slurm.js';
import { checkpointIsolatedJob } from './checkpoint.js';
import type { IsolatedExit, IsolatedJob } from './job.js';
import { isolatedSchedule } from './periodic.js';

export interface IsolatedSuperviseOptions {
  checkpointSignal?: NodeJS.Signals;
  requeue?: boolean;
  maxRestarts?: number;
  restartFromScratch?: boolean;
  /** A checkpoint (left running) every intervalMs, into `store`; the newest `keep` of the job's kept. */
  intervalMs?: number;
  keep?: number;
  /** The job's name and store (its snapshots). */
  name: string;
  store: string;
  /** Starts the job again: from a snapshot, or (undefined) from the beginning. */
  relaunch: (from: Snapshot | undefined) => Promise<IsolatedJob>;
  log: (line: string) => void;
}

/** The newest committed snapshot of isolated job `name` in `store`, if any. */
export function newestIsolatedSnapshot(store: string, name: string): Snapshot | undefined {
  return newestSnapshot(store, (m) => m.kind === 'process' && m.process.isolation?.name === name);
}

export async function superviseIsolated(first: IsolatedJob, o: IsolatedSuperviseOptions): Promise<IsolatedExit> {
  let job = first;
  let ending = false;
  let interrupts = 0;
  let checkpointRun: Promise<void> | undefined;
  const onEnd = () => {
    ending = true;
    if (++interrupts === 1) void job.end();
    else job.kill();
  };
  const schedule = o.intervalMs
    ? isolatedSchedule({
        intervalMs: o.intervalMs,
        keep: o.keep,
        name: o.name,
        store: o.store,
        job: () => job,
        mayRun: () => !checkpointRun && !ending && job.state !== 'exited',
        log: o.log,
      })
    : undefined;
  const onCheckpointSignal = (sig: NodeJS.Signals) => {
    if (checkpointRun || ending) return;
    o.log(`ckpt: ${sig}: checkpointing isolated job ${job.name}, then ending it`);
    // After a periodic checkpoint in progress: one dump of the tree at a time.
    const after = schedule?.idle() ?? Promise.resolve();
    checkpointRun = after.then(() => checkpointIsolatedJob({ job: job.id, dir: o.store, then: 'terminate' })).then(
      async (r) => {
        ending = true;
        o.log(`ckpt: job ${job.name} checkpointed into ${r.snapshot.dir} (seq ${r.snapshot.seq}); it ends with status ${EXIT_CHECKPOINTED}`);
        if (o.requeue) await requeueSlurmJob(o.log);
      },
      (err: unknown) => {
        checkpointRun = undefined;
        o.log(`ckpt: the checkpoint on ${sig} failed, the job goes on: ${(err as Error).message}`);
      },
    );
  };
  const endSignals = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).filter((s) => s !== o.checkpointSignal);
  for (const s of endSignals) process.on(s, onEnd);
  if (o.checkpointSignal) process.on(o.checkpointSignal, onCheckpointSignal);
  try {
    for (let restarts = 0; ; restarts++) {
      const exit = await job.wait();
      await checkpointRun;
      await schedule?.idle();
      const max = o.maxRestarts ?? 0;
      if (exit.status === 0 || exit.checkpointed || ending || max === 0) return exit;
      if (restarts >= max) {
        o.log(`ckpt: isolated job ${o.name} failed again after ${max} restart${max > 1 ? 's' : ''}: giving up`);
        return exit;
      }
      const from = newestIsolatedSnapshot(o.store, o.name);
      if (!from && !o.restartFromScratch) {
        o.log(`ckpt: isolated job ${o.name} has no committed snapshot in ${o.store} to recover from (--restart-from-scratch starts it again from the beginning)`);
        return exit;
      }
      o.log(
        `ckpt: isolated job ${o.name} exited with status ${exit.status}; restarting ${from ? `from snapshot ${from.seq}` : 'from the beginning'} (restart ${restarts + 1} of ${max})`,
      );
      job = await o.relaunch(from);
    }
  } finally {
    schedule?.stop();
    for (const s of endSignals) process.off(s, onEnd);
    if (o.checkpointSignal) process.off(o.checkpointSignal, onCheckpointSignal);
  }
}
