// Restarting a job from a global snapshot: a fresh coordinator, and every rank
// back — self: N fresh rank processes, each resumes from its part of the snapshot
// (ckpt/rank reads it in init(), and its first safePoint() resolves `restart`);
// criu: every rank restored by CRIU, woken inside its dump, rejoining the new
// coordinator through its rejoin pipe. The restarted job keeps the checkpointer,
// its name (and so its store: the same job goes on there), and its recorded
// periodic checkpoints and retention (--interval/--keep). A snapshot being verified
// (store/verify.ts) is verified while the ranks start or are restored; no rank runs
// on its state before it verified, and a damaged one ends the job before this returns.
import { existsSync } from 'node:fs';
import { CkptError, ErrorCodes } from '../errors.js';
import { isJobCheckpointer, jobCheckpointer } from '../crs/job-registry.js';
import { restartEnv } from '../store/env.js';
import type { JobSnapshot, Verification } from '../store/store.js';
import { launchJob, type Job, type LaunchOptions } from './launcher.js';

export type RestartJobOptions = Pick<
  LaunchOptions,
  'output' | 'intervalMs' | 'keep' | 'joinTimeoutMs' | 'rankTimeoutMs' | 'register' | 'launcher' | 'nodes' | 'distribution' | 'bind' | 'stage' | 'log' | 'starter'
> & {
  /** Variables taken from the current environment besides those that say where the job runs (store/env.ts). */
  envRefresh?: string[];
};

export async function restartJob(snapshot: JobSnapshot, options: RestartJobOptions = {}, verification?: Verification): Promise<Job> {
  const m = snapshot.manifest;
  const crs = m.crs.name;
  if (!isJobCheckpointer(crs)) {
    throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `restarting a job checkpointed by '${crs}' is not supported`);
  }
  // The component's own fields of every rank record, before anything is started.
  m.ranks.forEach((r, i) => jobCheckpointer(crs).validateRank(r, `ranks[${i}]`));
  const [command, ...args] = m.job.argv;
  if (!existsSync(m.job.cwd)) {
    throw new CkptError(ErrorCodes.CWD_MISSING, `the working directory the job ran in, ${m.job.cwd}, does not exist here`, {
      hint: 'create it (or mount what held it) and restart again',
    });
  }
  const { envRefresh, ...launch } = options;
  const job = await launchJob({
    ...launch,
    // The job's schedule and retention go on as recorded, unless the restart says otherwise (intervalMs 0: none).
    intervalMs: options.intervalMs ?? m.job.intervalMs,
    keep: options.keep ?? m.job.keep,
    command: command!,
    args,
    size: m.job.size,
    // Ranks placed anew across nodes talk over TCP whatever the job used before.
    oob: options.launcher === 'slurm' ? 'tcp' : m.job.oob,
    name: m.job.name,
    cwd: m.job.cwd,
    env: restartEnv(m.job.env, m.job.envWithheld, process.env, envRefresh),
    crs,
    // Later checkpoints of the restarted job go on numbering in the same store.
    store: snapshot.store,
    // A component that restores its ranks (criu) does so; otherwise they start afresh from the snapshot (self).
    ...(jobCheckpointer(crs).restoreRanks ? { restoreFrom: snapshot } : { restartFrom: snapshot.dir }),
    verification,
  });
  // Ranks started afresh wait at their welcome meanwhile; restored ones have passed it already.
  const corrupt = await verification?.failure();
  if (corrupt) {
    job.kill('ended: its snapshot is damaged');
    await job.wait();
    throw corrupt;
  }
  return job;
}
