// Restarting a job from a global snapshot: a fresh coordinator, and every rank
// back — self: N fresh rank processes, each resumes from its part of the snapshot
// (ckpt/rank reads it in init(), and its first safePoint() resolves `restart`);
// criu: every rank restored by CRIU, woken inside its dump, rejoining the new
// coordinator through its rejoin pipe. The restarted job keeps the checkpointer.
import { CkptError, ErrorCodes } from '../errors.js';
import type { JobSnapshot } from '../store/store.js';
import { launchJob, type Job, type LaunchOptions } from './launcher.js';

export type RestartJobOptions = Pick<LaunchOptions, 'output' | 'intervalMs' | 'keep' | 'joinTimeoutMs' | 'rankTimeoutMs' | 'register'>;

export async function restartJob(snapshot: JobSnapshot, options: RestartJobOptions = {}): Promise<Job> {
  const m = snapshot.manifest;
  const crs = m.crs.name;
  if (crs !== 'self' && crs !== 'criu') {
    throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `restarting a job checkpointed by '${crs}' is not supported`);
  }
  const [command, ...args] = m.job.argv;
  return launchJob({
    ...options,
    command: command!,
    args,
    size: m.job.size,
    oob: m.job.oob,
    name: m.job.name,
    cwd: m.job.cwd,
    env: m.job.env,
    crs,
    // Later checkpoints of the restarted job go on numbering in the same store.
    store: snapshot.store,
    ...(crs === 'self' ? { restartFrom: snapshot.dir } : { restoreFrom: snapshot }),
  });
}
