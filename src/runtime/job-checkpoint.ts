// The parts of a job's checkpoints that are not its life cycle: what a request may
// ask, waiting for the wire-up before the first one, what the manifest records of
// the job; the periodic schedule is util/periodic.ts.
import type { EventEmitter } from 'node:events';
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import { assertStoreFree, canonicalStore } from '../registry/jobs.js';
import type { EndState } from '../store/manifest.js';
import type { Snapshot } from '../store/store.js';
import type { Transport } from '../wire/channel.js';
import { jobEnvForSnapshot, type CheckpointPhase } from './checkpoint.js';
import type { JobEvents, LaunchOptions } from './job-types.js';
import type { CheckpointHandler } from './coordinator-control.js';
import type { WriteProgress } from '../store/image-watcher.js';

/** What one rank has written so far (criu ranks, while they dump). */
export type RankProgress = WriteProgress & { rank: number };

export interface CheckpointRequest {
  /** After the commit: go on (default), stop every rank (SIGSTOP), or end the job (status EXIT_CHECKPOINTED). */
  then?: EndState;
  /** Another store than the job's own (it must not be another job's). */
  store?: string;
  /** Another checkpointer than the job's own, for this checkpoint. */
  crs?: string;
  onPhase?: (phase: CheckpointPhase) => void;
  /**
   * Called, synchronously, once the snapshot is committed and before the ranks are
   * told to go on (a caller that answers someone does so before the ranks take the CPU).
   * The returned promise resolves after that; --keep's older snapshots go after it too.
   */
  onCommitted?: (snapshot: Snapshot) => void;
  /** Each criu rank's images while they are written, several times a second. */
  onProgress?: (progress: RankProgress) => void;
  /** A rank asked for it (comm.checkpoint()). */
  requested?: boolean;
  /** Aborted before the commit: the checkpoint is abandoned at its next phase (ranks resume, the partial goes). */
  signal?: AbortSignal;
}

/** The end state and the store a request names; throws a CkptError for a bad one. */
export function checkRequest(request: CheckpointRequest, job: { id: string; name: string; store: string }): { then: EndState; store: string } {
  const then = request.then ?? 'continue';
  if (!['continue', 'stop', 'terminate'].includes(then)) throw new CkptError(ErrorCodes.USAGE, `unknown end state '${then}'`);
  // Another store than the job's own (ckpt checkpoint JOB --dir): it must not be another job's.
  if (request.store !== undefined && canonicalStore(request.store) !== canonicalStore(job.store)) assertStoreFree(request.store, job);
  return { then, store: request.store ?? job.store };
}

interface JoinWatch {
  id: string;
  /** Every rank has joined. */
  ready: boolean;
  /** The job is being aborted or is over. */
  ending: boolean;
  events: EventEmitter<JobEvents>;
}

/**
 * Resolves once every rank has joined; rejects if the job ends first or not every
 * rank joins within `waitMs`. A job still starting is checkpointed once it is wired
 * up (a batch script may ask right after the launch), not refused.
 */
export function whenAllJoined(job: JoinWatch, waitMs: number): Promise<void> {
  if (job.ready) return Promise.resolve();
  const ending = () => new JobError(ErrorCodes.CHECKPOINT_FAILED, `job ${job.id} cannot be checkpointed: it ended before every rank had joined`);
  if (job.ending) return Promise.reject(ending());
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      clearTimeout(timer);
      job.events.off('ready', onReady);
      job.events.off('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => settle();
    const onAbort = () => settle(ending());
    const timer = setTimeout(
      () => settle(new JobError(ErrorCodes.CHECKPOINT_FAILED, `job ${job.id} cannot be checkpointed: not every rank has joined within ${waitMs / 1000} s`)),
      waitMs,
    );
    timer.unref();
    job.events.once('ready', onReady);
    job.events.once('abort', onAbort);
  });
}

/** The job as its snapshots record it: what a restart starts again from. */
export function manifestJob(job: { id: string; name: string; size: number; oob: Transport }, o: LaunchOptions, rankEnv: NodeJS.ProcessEnv) {
  return {
    id: job.id,
    name: job.name,
    size: job.size,
    oob: job.oob,
    argv: [o.command, ...(o.args ?? [])],
    cwd: o.cwd ?? process.cwd(),
    ...jobEnvForSnapshot(rankEnv),
    // What a restart resumes: the schedule and the retention.
    ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}),
    ...(o.keep ? { keep: o.keep } : {}),
  };
}

// The schedule is shared with isolated jobs and processes (util/periodic.ts).
export { everyInterval } from '../util/periodic.js';

/**
 * How long each phase of one checkpoint took as the coordinator saw it (ms, for
 * `ckpt checkpoint JOB --json` and bench/slurm.mjs): `begin`, from the request to
 * the first phase (a checkpoint in progress waited for, the wire-up, the new
 * snapshot's directory); then each phase until the next; `resume` until the caller
 * is answered.
 */
export function phaseClock(): { onPhase: (phase: CheckpointPhase) => void; done: () => Record<string, number> } {
  const marks: [string, number][] = [['begin', performance.now()]];
  return {
    onPhase: (phase) => marks.push([phase, performance.now()]),
    done: () => {
      const end = performance.now();
      return Object.fromEntries(marks.map(([phase, t], i) => [phase, Math.round(((marks[i + 1]?.[1] ?? end) - t) * 100) / 100]));
    },
  };
}

/**
 * A checkpoint asked for by a rank (comm.checkpoint()) or a user (ckpt checkpoint JOB):
 * taken once the one in progress (periodic, …) is over; the user is answered at the
 * commit, with the phases' times.
 */
export function checkpointHandler(job: { checkpoint(r: CheckpointRequest): Promise<Snapshot> }, inProgress: () => Promise<unknown> | undefined): CheckpointHandler {
  return async ({ then, store, crs, from, signal, onProgress, onCommitted }) => {
    const clock = phaseClock();
    const answer = (s: Snapshot) => ({ snapshot: s.dir, store: s.store, seq: s.seq, phasesMs: clock.done(), syncMs: s.syncMs });
    for (let busy = inProgress(); busy; busy = inProgress()) await busy.catch(() => {});
    const request = { then: then as EndState | undefined, store, crs, requested: from === 'rank', signal, onProgress, onPhase: clock.onPhase };
    return answer(await job.checkpoint({ ...request, onCommitted: onCommitted && ((s) => onCommitted(answer(s))) }));
  };
}

/**
 * What a job's next snapshot directory is made with, ahead (store/reserve.ts): a criu
 * job's rank-N/images, so that no rank makes or chmods a directory in its pause (each
 * took 1.4–6.7 ms on ext4 there, traced at 1 × 2). Not when staged: the copy makes them.
 */
export function nextSnapshotDirs(snapshot: Snapshot, staged: boolean): string[] {
  const m = snapshot.manifest;
  if (staged || m.kind !== 'job' || m.crs.name !== 'criu' || typeof m.data.images !== 'string') return [];
  const images = m.data.images;
  return m.ranks.flatMap((r) => [r.dir, `${r.dir}/${images}`]);
}
