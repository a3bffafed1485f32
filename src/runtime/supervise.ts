// Running a job to its end unattended, as a batch system needs: a signal ahead of the
// kill (Slurm's `--signal=B:USR1@120`, preemption) becomes a checkpoint that ends the
// job with EXIT_CHECKPOINTED (and, asked to, a requeue); SIGINT/SIGTERM end it (a
// checkpoint in progress is let finish first); a rank or node that dies brings the
// job back from its newest committed snapshot, a bounded number of times.
import { signalStatus } from '../util/exit-status.js';
import { CkptError, ErrorCodes } from '../errors.js';
import { newestSnapshot, type JobSnapshot } from '../store/store.js';
import { EXIT_CHECKPOINTED, type Job, type JobResult } from './launcher.js';
import { requeueSlurmJob } from '../util/slurm.js';

export interface SuperviseOptions {
  /** On this signal: a checkpoint that ends the job (status EXIT_CHECKPOINTED). */
  checkpointSignal?: NodeJS.Signals;
  /** After that checkpoint is committed: `scontrol requeue $SLURM_JOB_ID` (under Slurm). */
  requeue?: boolean;
  /** How often a job whose rank died is brought back from its newest snapshot (default 0). */
  maxRestarts?: number;
  /** A job that dies before its first checkpoint starts again from the beginning. */
  restartFromScratch?: boolean;
  /** The job's store and name: where its snapshots are. */
  store: string;
  name: string;
  /** Starts the job again: from a snapshot, or (undefined) from the beginning. */
  relaunch: (from: JobSnapshot | undefined) => Promise<Job>;
  /** One line for the user (stderr). */
  log: (line: string) => void;
}

/** How long a SIGTERM lets a checkpoint in progress finish before the job is ended (ms). */
export const CHECKPOINT_GRACE_MS = 30_000;

const END_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** The newest committed snapshot of job `name` (any job's, without a name) in `store`, if any. */
export function newestJobSnapshot(store: string, name?: string): JobSnapshot | undefined {
  return newestSnapshot(store, (m) => m.kind === 'job' && (name === undefined || m.job.name === name)) as JobSnapshot | undefined;
}

/** Waits for `job` and whatever replaces it; resolves with the status the command should exit with. */
export async function superviseJob(first: Job, o: SuperviseOptions): Promise<JobResult> {
  let job = first;
  let ending = false;
  let interrupts = 0;
  let checkpointRun: Promise<unknown> | undefined;

  const onEnd = (signal: NodeJS.Signals) => {
    ending = true;
    if (++interrupts > 1) return job.signal('SIGKILL');
    const status = signalStatus(signal);
    const busy = job.busy();
    if (!busy) return job.kill(`interrupted (${signal})`, status);
    // Let the checkpoint in progress finish (or abort) first, within a bound: never a
    // half-written snapshot, and a snapshot taken to end the job is kept.
    o.log(`ckpt: ${signal}: letting the checkpoint in progress finish (at most ${CHECKPOINT_GRACE_MS / 1000} s)`);
    const timer = setTimeout(() => job.kill(`interrupted (${signal})`, status), CHECKPOINT_GRACE_MS);
    void busy.finally(() => {
      clearTimeout(timer);
      job.kill(`interrupted (${signal})`, status);
    });
  };
  const onCheckpointSignal = (signal: NodeJS.Signals) => {
    if (checkpointRun || ending) return;
    o.log(`ckpt: ${signal}: checkpointing job ${job.name}, then ending it`);
    checkpointRun = job.checkpoint({ then: 'terminate' }).then(
      async (s) => {
        ending = true;
        o.log(`ckpt: job ${job.name} checkpointed into ${s.dir} (seq ${s.seq}); it ends with status ${EXIT_CHECKPOINTED}`);
        if (o.requeue) await requeueSlurmJob(o.log);
      },
      (err: unknown) => {
        checkpointRun = undefined;
        const why = err instanceof CkptError ? `${err.message} [${err.code}]` : String(err);
        o.log(`ckpt: the checkpoint on ${signal} failed, the job goes on: ${why}`);
      },
    );
  };
  // A checkpoint signal among the ending ones (e.g. SIGTERM) checkpoints instead of ending.
  const endSignals = END_SIGNALS.filter((s) => s !== o.checkpointSignal);
  for (const s of endSignals) process.on(s, onEnd);
  if (o.checkpointSignal) process.on(o.checkpointSignal, onCheckpointSignal);
  try {
    for (let restarts = 0; ; restarts++) {
      const result = await job.wait();
      await checkpointRun?.catch(() => {});
      if (result.status === 0 || result.checkpointed || ending || !result.error) return result;
      const max = o.maxRestarts ?? 0;
      if (max === 0) return result;
      if (restarts >= max) {
        o.log(`ckpt: job ${o.name} failed again after ${max} restart${max > 1 ? 's' : ''}: giving up`);
        return result;
      }
      const from = newestJobSnapshot(o.store, o.name);
      if (!from && !o.restartFromScratch) {
        o.log(`ckpt: job ${o.name} has no committed snapshot in ${o.store} to recover from (--restart-from-scratch starts it again from the beginning)`);
        return result;
      }
      o.log(
        `ckpt: ${result.error.message}; restarting ${from ? `from snapshot ${from.seq}` : 'from the beginning'} (restart ${restarts + 1} of ${max})`,
      );
      try {
        job = await o.relaunch(from);
      } catch (err) {
        throw new CkptError(ErrorCodes.JOB_ABORTED, `job ${o.name} could not be restarted: ${(err as Error).message}`, { cause: err });
      }
    }
  } finally {
    for (const s of endSignals) process.off(s, onEnd);
    if (o.checkpointSignal) process.off(o.checkpointSignal, onCheckpointSignal);
  }
}
