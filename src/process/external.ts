// Checkpointing another process tree from outside (`ckpt checkpoint --pid`).
import { CkptError, ErrorCodes, InterruptedError, ProcessError } from '../errors.js';
import { selectCheckpointer } from '../crs/registry.js';
import type { NotifyHook } from '../crs/types.js';
import { processManifestDraft, type EndState, type ProcessRecord } from '../store/manifest.js';
import { abortSnapshot, beginSnapshot, commitSnapshot, type Snapshot } from '../store/store.js';
import { ownerUid, readStat } from '../util/procfs.js';
import { assertSafePid, signalPid } from '../util/signals.js';
import { currentPid, recordOf } from '../store/record.js';
import { resumeStoppedSince, stoppedIn } from './interrupt.js';

export interface ProcessCheckpointOptions {
  pid: number;
  dir: string;
  /** continue (default): left running; stop: left stopped until `ckpt resume`; terminate: ended. */
  then?: EndState;
  /**
   * How `terminate` ends the tree: SIGKILL (default: committed while CRIU holds it
   * frozen, then killed), or SIGTERM (committed, then every process gets SIGTERM and
   * SIGCONT, so that it can handle it: its handler's work is not in the snapshot).
   */
  terminateWith?: 'SIGKILL' | 'SIGTERM';
  crs?: string;
  onProgress?: (message: string) => void;
  /** Called at each of CRIU's dump stages (pre-dump, post-dump, …); false or a throw aborts the dump. */
  onNotify?: NotifyHook;
  /**
   * Aborted (the CLI: on SIGINT or SIGTERM) before the commit: the dump is given up at
   * CRIU's next stage, the partial snapshot removed, the tree left running as it was
   * (not killed, not stopped), and the call throws InterruptedError (ECKPT_INTERRUPTED).
   * Once the commit writes the manifest (its point of no return) the checkpoint completes as asked.
   */
  signal?: AbortSignal;
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
  // The true reason, whatever the end state: even --leave-running freezes the tree while it is dumped.
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    const why = pid === 1 ? 'it is init, and a dump freezes the whole tree below it' : 'it is no process';
    throw new CkptError(ErrorCodes.UNSAFE_PID, `refusing to checkpoint pid ${pid}: ${why}`);
  }
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
 * In terminate mode the commit happens while CRIU still holds the tree frozen, so
 * that a failure can be rolled back by CRIU (TCP connections out of repair mode,
 * network unlocked); should the tree be gone anyway, its images are kept.
 */
export async function checkpointProcess(options: ProcessCheckpointOptions): Promise<Snapshot> {
  const then = options.then ?? 'continue';
  assertCheckpointable(options.pid);
  const { component, availability } = await selectCheckpointer({ name: options.crs, transparent: true });
  if (!component.checkpointProcess) {
    throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `the '${component.name}' checkpointer cannot snapshot another process`);
  }
  const record = recordOf(options.pid);
  // Processes the user had stopped stay so after an interrupted checkpoint.
  const stoppedBefore = stoppedIn(options.pid);
  const createdAt = new Date().toISOString();
  const pending = beginSnapshot(options.dir);
  const leave = then === 'continue' ? 'running' : 'stopped';
  // SIGKILL: CRIU kills the tree itself, after a commit made while it still holds it.
  const kill = then === 'terminate' && options.terminateWith !== 'SIGTERM';
  let snapshot: Snapshot | undefined;
  let commitFailed = false;
  const commit = async (data: Record<string, unknown>): Promise<void> => {
    options.onProgress?.('committing the snapshot');
    try {
      snapshot = await commitSnapshot(
        pending,
        processManifestDraft({ createdAt, crs: { name: component.name, version: availability.version ?? 'unknown' }, endState: then, origin: 'external', process: record, data }),
        { onProgress: options.onProgress, signal: options.signal },
      );
    } catch (err) {
      commitFailed = true;
      throw err;
    }
  };
  let result;
  try {
    result = await component.checkpointProcess({
      pid: options.pid,
      pending,
      record,
      leave,
      thenKill: kill,
      commitFrozen: kill ? commit : undefined,
      onProgress: options.onProgress,
      onNotify: options.onNotify,
      signal: options.signal,
    });
  } catch (err) {
    if (commitFailed && kill && !treeAlive(options.pid)) throw keptImages(pending, record, err);
    abortSnapshot(pending);
    if (err instanceof InterruptedError) resumeStoppedSince(options.pid, stoppedBefore);
    throw err;
  }
  // Committed while frozen: the component (CRIU) has killed the tree.
  if (snapshot) return snapshot;
  // The tree as CRIU froze it (the component refreshed record.tree then).
  const tree = record.tree;
  try {
    await commit(result.data ?? {});
  } catch (err) {
    abortSnapshot(pending);
    if (leave === 'stopped') for (const pid of tree) signalPid(pid, 'SIGCONT');
    if (err instanceof InterruptedError) resumeStoppedSince(options.pid, stoppedBefore);
    throw err;
  }
  if (kill) for (const pid of tree) signalPid(pid, 'SIGKILL');
  else if (then === 'terminate') terminateStopped(tree);
  return snapshot!;
}

/** SIGTERM to every process of a stopped tree, then SIGCONT: each handles its SIGTERM as it wakes. */
function terminateStopped(tree: number[]): void {
  for (const pid of tree) signalPid(pid, 'SIGTERM');
  for (const pid of tree) signalPid(pid, 'SIGCONT');
}

function treeAlive(pid: number): boolean {
  const st = readStat(pid);
  return !!st && st.state !== 'Z';
}

/**
 * A failed commit after which the process is gone all the same (CRIU could not roll
 * the dump back): its images are all that is left of it, so they stay, with the way
 * to bring it back.
 */
function keptImages(pending: { path: string }, record: ProcessRecord, err: unknown): CkptError {
  // By name: our descriptor on it is gone with us.
  const images = `${pending.path}/images`;
  const e = err as CkptError;
  const flags = [
    '--restore-detached',
    record.shellJob ? '--shell-job' : '',
    record.tcpEstablished ? '--tcp-established' : '',
    `--network-lock ${record.networkLock === 'skip' ? 'skip' : 'nftables'}`,
  ].filter(Boolean);
  return new CkptError(e.code ?? ErrorCodes.CHECKPOINT_FAILED, `${e.message ?? String(err)}; the process is gone, its images are kept in ${images}`, {
    cause: err,
    hint: `free some space, then: criu restore -D ${images} ${flags.join(' ')}`,
    details: { images },
  });
}

// `ckpt resume`, kept importable from here.
export { resumeProcess } from './resume.js';
