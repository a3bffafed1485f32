// Checkpointing another process tree from outside (`ckpt checkpoint --pid`).
import { CkptError, ErrorCodes, InterruptedError, ProcessError } from '../errors.js';
import { selectCheckpointer } from '../crs/registry.js';
import type { Availability, Checkpointer, NotifyHook, PreparedCheckpoint } from '../crs/types.js';
import { processManifestDraft, type EndState, type ProcessRecord } from '../store/manifest.js';
import { abortSnapshot, beginSnapshot, commitSnapshot, type PendingSnapshot, type Snapshot } from '../store/store.js';
import { ownerUid, readStat } from '../util/procfs.js';
import { signalPid } from '../util/signals.js';
import { currentPid, recordOf } from '../store/record.js';
import { envFlag } from '../config.js';
import { IMAGES_DIR } from '../crs/criu/options.js';
import { readDumpStats } from '../criu/images.js';
import { ImageWatcher, type WriteProgress } from '../store/image-watcher.js';
import { preloadChecksums } from '../store/checksum.js';
import { privateResidentBytes } from '../util/memory.js';
import { progressLine } from '../util/format-bytes.js';
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
  /**
   * Progress in words; while CRIU writes the images, also in figures (`progress`:
   * bytes so far, rate, time left when the size could be estimated), several times a second.
   */
  onProgress?: (message: string, progress?: WriteProgress) => void;
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

/** A committed snapshot of a process tree, with what it took. */
export interface ProcessCheckpointResult extends Snapshot {
  /** The size of its files. */
  bytes: number;
  /** From the call to the commit. */
  durationMs: number;
  /** How long the tree was frozen (CRIU's own count), when CRIU reported it. */
  frozenMs?: number;
  /** bytes / durationMs. */
  bytesPerSecond: number;
}

/** Watches the images while CRIU writes them: progress, and the commit's work started early. */
function watchImages(pending: PendingSnapshot, tree: number[], onProgress: ProcessCheckpointOptions['onProgress']): ImageWatcher | undefined {
  const dir = pending.handles?.dir;
  const overlap = envFlag('CKPT_COMMIT_OVERLAP');
  if (!dir || (!overlap && !onProgress)) return undefined;
  const expected = privateResidentBytes(tree);
  return new ImageWatcher({
    dir,
    sub: IMAGES_DIR,
    overlap,
    expectedBytes: expected > 0 ? expected : undefined,
    onProgress: onProgress && ((p) => onProgress(progressLine(p), p)),
  });
}

/**
 * Snapshots a process tree. In terminate and stop modes the tree is dumped stopped
 * and only ended once the snapshot is committed: a failed commit leaves it running.
 * In terminate mode the commit happens while CRIU still holds the tree frozen, so
 * that a failure can be rolled back by CRIU (TCP connections out of repair mode,
 * network unlocked); should the tree be gone anyway, its images are kept.
 */
export async function checkpointProcess(options: ProcessCheckpointOptions): Promise<ProcessCheckpointResult> {
  const startedAt = Date.now();
  assertCheckpointable(options.pid);
  const { component, availability } = await selectCheckpointer({ name: options.crs, transparent: true });
  if (!snapsOthers(component)) {
    throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `the '${component.name}' checkpointer cannot snapshot another process`);
  }
  // Its worker first (CRIU's): it starts up while the tree is looked at and the store opened.
  const prepared = await component.prepareProcessCheckpoint?.();
  try {
    return await checkpointWith(component, availability, options, prepared, startedAt);
  } finally {
    prepared?.dispose(); // taken by the request: nothing; unused (an error before the dump): ended
  }
}

type ProcessCheckpointer = Checkpointer & Required<Pick<Checkpointer, 'checkpointProcess'>>;
const snapsOthers = (c: Checkpointer): c is ProcessCheckpointer => c.checkpointProcess !== undefined;

async function checkpointWith(
  component: ProcessCheckpointer,
  availability: Availability,
  options: ProcessCheckpointOptions,
  prepared: PreparedCheckpoint | undefined,
  startedAt: number,
): Promise<ProcessCheckpointResult> {
  const then = options.then ?? 'continue';
  const record = recordOf(options.pid);
  // Processes the user had stopped stay so after an interrupted checkpoint.
  const stoppedBefore = stoppedIn(options.pid);
  const createdAt = new Date().toISOString();
  const pending = beginSnapshot(options.dir);
  // The commit's checksum code (a native addon) loaded while CRIU dumps, this thread idle.
  setImmediate(preloadChecksums);
  const watcher = component.name === 'criu' ? watchImages(pending, record.tree.length ? record.tree : [options.pid], options.onProgress) : undefined;
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
        { onProgress: options.onProgress, signal: options.signal, watcher },
      );
    } catch (err) {
      commitFailed = true;
      throw err;
    }
  };
  let result;
  /** When CRIU froze the tree: a frozen time where CRIU's stats are not in the images (a killed tree's). */
  let frozenAt: number | undefined;
  try {
    result = await component.checkpointProcess({
      pid: options.pid,
      pending,
      record,
      leave,
      thenKill: kill,
      commitFrozen: kill ? commit : undefined,
      onProgress: options.onProgress,
      onNotify: async (stage, pid) => {
        if (stage === 'pre-dump') frozenAt = Date.now();
        return options.onNotify?.(stage, pid);
      },
      signal: options.signal,
      prepared,
    });
  } catch (err) {
    await watcher?.close();
    if (commitFailed && kill && !treeAlive(options.pid)) throw keptImages(pending, record, err);
    abortSnapshot(pending);
    if (err instanceof InterruptedError) resumeStoppedSince(options.pid, stoppedBefore);
    throw err;
  }
  // Committed while frozen: the component (CRIU) has killed the tree.
  if (snapshot) return withFigures(snapshot, startedAt, frozenAt);
  // The tree as CRIU froze it (the component refreshed record.tree then).
  const tree = record.tree;
  try {
    await commit(result.data ?? {});
  } catch (err) {
    await watcher?.close();
    abortSnapshot(pending);
    if (leave === 'stopped') for (const pid of tree) signalPid(pid, 'SIGCONT');
    if (err instanceof InterruptedError) resumeStoppedSince(options.pid, stoppedBefore);
    throw err;
  }
  if (kill) for (const pid of tree) signalPid(pid, 'SIGKILL');
  else if (then === 'terminate') terminateStopped(tree);
  return withFigures(snapshot!, startedAt, frozenAt);
}
function withFigures(snapshot: Snapshot, startedAt: number, frozenAt: number | undefined): ProcessCheckpointResult {
  const now = Date.now();
  const durationMs = now - startedAt;
  const bytes = snapshot.manifest.files.reduce((n, f) => n + f.size, 0);
  let frozenMs: number | undefined;
  try {
    const us = readDumpStats(`${snapshot.dir}/${IMAGES_DIR}`)?.frozenTimeUs;
    if (us !== undefined) frozenMs = Math.round(us / 1000);
  } catch {
    // unreadable: as if there were none
  }
  // A killed tree's stats come after the commit (it stays frozen until it dies).
  if (frozenMs === undefined && frozenAt !== undefined) frozenMs = now - frozenAt;
  return { ...snapshot, bytes, durationMs, bytesPerSecond: Math.round(bytes / (Math.max(1, durationMs) / 1000)), ...(frozenMs !== undefined ? { frozenMs } : {}) };
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
