// `ckpt checkpoint --pid P --interval S --keep K`: a process checkpointed from outside
// every S seconds until it exits (DMTCP's `dmtcp_launch -i`, for any running process).
// The schedule (util/periodic.ts) and the retention (store/retention.ts) are those of
// rank and isolated jobs; each checkpoint is an ordinary one, left running.
import { CkptError, ErrorCodes } from '../errors.js';
import { selectCheckpointer } from '../crs/registry.js';
import { processStartTime } from '../registry/jobs.js';
import type { Manifest } from '../store/manifest.js';
import { keepNewest } from '../store/retention.js';
import type { Snapshot } from '../store/store.js';
import { periodic } from '../util/periodic.js';
import { readStat } from '../util/procfs.js';
import { assertCheckpointable, checkpointProcess } from './external.js';

export interface PeriodicCheckpointOptions {
  pid: number;
  dir: string;
  intervalMs: number;
  /** Keep only the newest K snapshots of this process in `dir` (others' are never removed). */
  keep?: number;
  crs?: string;
  /** Ends the schedule: at once between checkpoints, after the one in progress otherwise. */
  signal?: AbortSignal;
  /** The process is checkpointable and the schedule starts. */
  onStart?: () => void;
  onCheckpoint?: (snapshot: Snapshot, removed: number[]) => void;
  /** A checkpoint that failed while the process lives on: reported, the schedule goes on. */
  onError?: (err: CkptError) => void;
  onProgress?: (message: string) => void;
}

export interface PeriodicCheckpointResult {
  checkpoints: number;
  failures: number;
  /** The newest snapshot taken, if any. */
  last?: Snapshot;
  /** Why it ended: the process exited, or `signal` was aborted. */
  ended: 'exited' | 'interrupted';
}

/** How often the process is looked for between checkpoints (it is not our child: no wait()). */
const WATCH_MS = 100;

/** This process's snapshots in a store (the pid is kept by a CRIU restore: the series goes on). */
export function isSnapshotOf(pid: number): (m: Manifest) => boolean {
  return (m) => m.kind === 'process' && m.origin === 'external' && m.process.pid === pid;
}

/** Checkpoints `pid` every `intervalMs` until it exits (or `signal` aborts); see the options. */
export async function checkpointPeriodically(o: PeriodicCheckpointOptions): Promise<PeriodicCheckpointResult> {
  if (!(o.intervalMs > 0)) throw new CkptError(ErrorCodes.USAGE, 'a periodic checkpoint needs an interval above 0');
  assertCheckpointable(o.pid);
  // A checkpointer that cannot dump another process fails now, not after the first interval.
  const { component } = await selectCheckpointer({ name: o.crs, transparent: true });
  if (!component.checkpointProcess) throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `the '${component.name}' checkpointer cannot snapshot another process`);
  // The pid with its start time: a pid reused by another process is not ours to dump.
  const started = processStartTime(o.pid);
  const alive = () => processStartTime(o.pid) === started && readStat(o.pid)?.state !== 'Z';
  const result: PeriodicCheckpointResult = { checkpoints: 0, failures: 0, ended: 'exited' };
  const schedule = periodic(o.intervalMs, async () => {
    if (!alive() || o.signal?.aborted) return;
    try {
      const snapshot = await checkpointProcess({ pid: o.pid, dir: o.dir, crs: o.crs, then: 'continue', onProgress: o.onProgress });
      result.checkpoints++;
      result.last = snapshot;
      const removed = o.keep ? keepNewest(o.dir, o.keep, isSnapshotOf(o.pid)) : [];
      o.onCheckpoint?.(snapshot, removed);
    } catch (err) {
      // A process that exited during its dump ends the series; it is no failure.
      if (!alive()) return;
      result.failures++;
      o.onError?.(err instanceof CkptError ? err : new CkptError(ErrorCodes.CHECKPOINT_FAILED, String(err), { cause: err }));
    }
  });
  o.onStart?.();
  await new Promise<void>((resolve) => {
    const done = () => {
      clearInterval(watch);
      o.signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = () => {
      result.ended = 'interrupted';
      done();
    };
    // This timer keeps the command alive while it waits (the schedule's does not).
    const watch = setInterval(() => {
      if (!alive()) done();
    }, WATCH_MS);
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort);
  });
  schedule.stop();
  await schedule.idle();
  return result;
}
