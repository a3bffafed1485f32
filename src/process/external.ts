// Checkpointing another process tree from outside (`ckpt checkpoint --pid`).
import { CkptError, ErrorCodes, ProcessError } from '../errors.js';
import { selectCheckpointer } from '../crs/registry.js';
import type { NotifyHook } from '../crs/types.js';
import { processManifestDraft, type EndState } from '../store/manifest.js';
import { abortSnapshot, beginSnapshot, commitSnapshot, type Snapshot } from '../store/store.js';
import { ownerUid, processTree, readStat } from '../util/procfs.js';
import { assertSafePid, signalPid } from '../util/signals.js';
import { currentPid, recordOf } from './record.js';

export interface ProcessCheckpointOptions {
  pid: number;
  dir: string;
  /** continue (default): left running; stop: left stopped until SIGCONT; terminate: killed. */
  then?: EndState;
  crs?: string;
  onProgress?: (message: string) => void;
  /** Called at each of CRIU's dump stages (pre-dump, post-dump, …); false or a throw aborts the dump. */
  onNotify?: NotifyHook;
}

function ancestorsOfSelf(): number[] {
  const out: number[] = [];
  for (let pid = currentPid(); pid > 1; ) {
    out.push(pid);
    const st = readStat(pid);
    if (!st) break;
    pid = st.ppid;
  }
  return out;
}

/** Refuses pids that do not exist, that are ours, or that the user does not own. */
export function assertCheckpointable(pid: number): void {
  assertSafePid(pid);
  const st = readStat(pid);
  if (!st) throw new ProcessError(ErrorCodes.NO_SUCH_PROCESS, `no process with pid ${pid}`);
  if (st.state === 'Z') throw new ProcessError(ErrorCodes.NO_SUCH_PROCESS, `process ${pid} has already exited (zombie)`);
  if (ancestorsOfSelf().includes(pid)) {
    throw new CkptError(ErrorCodes.USAGE, `pid ${pid} is ckpt itself or one of its parents`, {
      hint: 'a program checkpoints itself with checkpoint() from the ckpt library',
    });
  }
  // Ownership first: another user's /proc/PID/{cwd,environ} cannot even be read.
  const uid = process.geteuid?.();
  const owner = ownerUid(pid);
  if (owner === undefined) throw new ProcessError(ErrorCodes.NO_SUCH_PROCESS, `no process with pid ${pid}`);
  if (uid !== 0 && owner !== uid) {
    throw new ProcessError(ErrorCodes.NOT_OWNER, `process ${pid} belongs to uid ${owner}, not to you`);
  }
}

/**
 * Snapshots a process tree. In terminate and stop modes the tree is dumped stopped
 * and only ended once the snapshot is committed: a failed commit leaves it running.
 */
export async function checkpointProcess(options: ProcessCheckpointOptions): Promise<Snapshot> {
  const then = options.then ?? 'continue';
  assertCheckpointable(options.pid);
  const { component, availability } = await selectCheckpointer({ name: options.crs, transparent: true });
  if (!component.checkpointProcess) {
    throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `the '${component.name}' checkpointer cannot snapshot another process`);
  }
  const record = recordOf(options.pid);
  const createdAt = new Date().toISOString();
  const pending = beginSnapshot(options.dir);
  const leave = then === 'continue' ? 'running' : 'stopped';
  let result;
  try {
    result = await component.checkpointProcess({
      pid: options.pid,
      pending,
      record,
      leave,
      thenKill: then === 'terminate',
      onProgress: options.onProgress,
      onNotify: options.onNotify,
    });
  } catch (err) {
    abortSnapshot(pending);
    throw err;
  }
  // The tree as CRIU froze it (the component refreshed record.tree then).
  const tree = record.tree;
  let snapshot: Snapshot;
  try {
    options.onProgress?.('committing the snapshot');
    snapshot = await commitSnapshot(
      pending,
      processManifestDraft({ createdAt, crs: { name: component.name, version: availability.version ?? 'unknown' }, endState: then, origin: 'external', process: record, data: result.data ?? {} }),
      { onProgress: options.onProgress },
    );
  } catch (err) {
    abortSnapshot(pending);
    if (leave === 'stopped') for (const pid of tree) signalPid(pid, 'SIGCONT');
    throw err;
  }
  if (then === 'terminate') for (const pid of tree) signalPid(pid, 'SIGKILL');
  return snapshot;
}

/** Lets a stopped process tree run again (`ckpt resume`). */
export function resumeProcess(pid: number): number[] {
  assertSafePid(pid);
  if (!readStat(pid)) throw new ProcessError(ErrorCodes.NO_SUCH_PROCESS, `no process with pid ${pid}`);
  const tree = processTree(pid);
  for (const p of tree) signalPid(p, 'SIGCONT');
  return tree;
}
