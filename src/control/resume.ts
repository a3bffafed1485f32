// `ckpt resume JOB`: a job left stopped by `ckpt checkpoint JOB --stop` runs again,
// whichever its kind — the same word as for a process (`ckpt resume PID`).
import { CkptError, ErrorCodes } from '../errors.js';
import { findJob, type JobRecord } from '../registry/jobs.js';
import { isolatedRootAlive } from '../isolate/job.js';
import { continueStoppedTree } from '../util/stopped-tree.js';
import { killJob } from './job-control.js';

export interface JobResumeResult {
  job: JobRecord;
  /** An isolated job: the pids of its tree that were stopped and now run. */
  processes?: number[];
  /** A rank job: how SIGCONT got to its ranks (see killJob). */
  via?: 'coordinator' | 'signals';
}

/**
 * Resumes a stopped job: every stopped process of an isolated job's tree (from its
 * pid 1; a SIGCONT to the command alone would leave the rest stopped), or SIGCONT
 * to every rank (their process groups) of a rank job, through its coordinator.
 */
export async function resumeJob(query: string): Promise<JobResumeResult> {
  const job = findJob(query);
  if (job.kind === 'isolated') {
    if (!job.isolated || !isolatedRootAlive(job)) throw new CkptError(ErrorCodes.JOB_NOT_FOUND, `isolated job ${job.id} is no longer running`);
    return { job, processes: continueStoppedTree(job.isolated.rootPid) };
  }
  const { via } = await killJob(job.id, 'SIGCONT');
  return { job, via };
}
