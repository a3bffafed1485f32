// checkpoint(): a process snapshots itself and returns in one of two worlds —
// `continue` in the original, `restart` in a process brought back from the snapshot.
import { hostname } from 'node:os';
import { CkptError, ErrorCodes } from '../errors.js';
import { envString } from '../config.js';
import { RESTART_SNAPSHOT_ENV } from '../crs/fresh-start.js';
import { getCheckpointer, selectCheckpointer } from '../crs/registry.js';
import { selfRegistered } from '../crs/self/index.js';
import { processManifestDraft, type EndState } from '../store/manifest.js';
import { abortSnapshot, assertIntact, beginSnapshot, closeSnapshot, commitSnapshot, isProcessSnapshot, openSnapshot, reacquirePending, releasePending, snapshotPath } from '../store/store.js';
import { runHooks, type CheckpointResult } from '../crs/hooks.js';
import { currentPid, recordOfSelf } from '../store/record.js';

export interface CheckpointOptions {
  /** The snapshot store: each checkpoint adds a numbered snapshot to it. */
  dir: string;
  /** A checkpointer by name (criu, self, none); default: CKPT_CRS, else the best available. */
  crs?: string;
  /** What the original process does afterwards: continue (default), stop until SIGCONT, or terminate. */
  then?: EndState;
  onProgress?: (message: string) => void;
}

let busy = false;
let freshRestartHandled = false;

/** Snapshots the calling process (and its children). See CheckpointResult. */
export async function checkpoint(options: CheckpointOptions): Promise<CheckpointResult> {
  if (!options || typeof options.dir !== 'string' || options.dir === '') {
    throw new CkptError(ErrorCodes.USAGE, 'checkpoint({ dir }) needs a snapshot directory');
  }
  if (busy) throw new CkptError(ErrorCodes.CHECKPOINT_BUSY, 'a checkpoint of this process is already in progress');
  busy = true;
  try {
    // A process started afresh from a self/none snapshot: its first checkpoint()
    // takes no snapshot, it loads the saved state and reports the restart.
    const resumeFrom = envString(RESTART_SNAPSHOT_ENV);
    if (resumeFrom && !freshRestartHandled) {
      freshRestartHandled = true;
      delete process.env[RESTART_SNAPSHOT_ENV];
      return await resumeFresh(resumeFrom);
    }
    return await takeCheckpoint(options);
  } finally {
    busy = false;
  }
}

async function takeCheckpoint(options: CheckpointOptions): Promise<CheckpointResult> {
  const then = options.then ?? 'continue';
  if (!['continue', 'stop', 'terminate'].includes(then)) throw new CkptError(ErrorCodes.USAGE, `unknown end state '${then}'`);
  const { component, availability } = await selectCheckpointer({ name: options.crs, selfRegistered: selfRegistered() });
  const pending = beginSnapshot(options.dir);
  const record = recordOfSelf();
  const previousHostname = hostname();
  const createdAt = new Date().toISOString();
  const snapshotRef = { store: pending.store, seq: pending.seq, dir: pending.finalDir };
  const base = { crs: component.name, previousPid: record.pid, previousHostname, snapshot: snapshotRef };

  let outcome;
  let prepared = false;
  /** A failure after onPrepare ran: onContinue undoes it (`aborted`), then the error goes on. */
  const failed = async (err: unknown): Promise<never> => {
    abortSnapshot(pending);
    if (prepared) await runHooks('continue', { ...base, state: 'continue', pid: record.pid, hostname: previousHostname, aborted: true });
    throw err;
  };
  try {
    prepared = true;
    await runHooks('prepare', { crs: component.name, store: pending.store, seq: pending.seq });
    // A process that dumps itself must hold no descriptor on the snapshot it writes:
    // it would be in the images, naming a directory the commit renames.
    if (component.transparent) releasePending(pending);
    outcome = await component.checkpointSelf({ pending, record, onProgress: options.onProgress });
    if (outcome.state === 'continue' && component.transparent) reacquirePending(pending);
  } catch (err) {
    return failed(err);
  }

  if (outcome.state === 'restart') {
    // We are the restored copy: the original committed this snapshot after the dump.
    const result: CheckpointResult = { ...base, state: 'restart', pid: currentPid(), hostname: hostname() };
    await runHooks('restart', result);
    return result;
  }

  const manifest = processManifestDraft({
    createdAt,
    crs: { name: component.name, version: availability.version ?? 'unknown' },
    host: previousHostname,
    endState: then,
    origin: 'self',
    process: record,
    data: outcome.data ?? {},
  });
  try {
    options.onProgress?.('committing the snapshot');
    await commitSnapshot(pending, manifest, { onProgress: options.onProgress });
  } catch (err) {
    return failed(err);
  }
  if (then === 'terminate') process.exit(0);
  const result: CheckpointResult = { ...base, state: 'continue', pid: record.pid, hostname: previousHostname };
  await runHooks('continue', result);
  // Stopped until `ckpt resume` or SIGCONT; then it goes on as a continue.
  if (then === 'stop') process.kill(record.pid, 'SIGSTOP');
  return result;
}

async function resumeFresh(dir: string): Promise<CheckpointResult> {
  const snapshot = openSnapshot(dir);
  if (!isProcessSnapshot(snapshot)) {
    throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${dir} is a job snapshot: ranks resume through ckpt/rank, not checkpoint()`);
  }
  await assertIntact(snapshot);
  const { manifest } = snapshot;
  await getCheckpointer(manifest.crs.name).loadState?.(snapshotPath(snapshot), manifest.data);
  // Read: a later checkpoint (which may dump this process with CRIU) holds no descriptor on it.
  closeSnapshot(snapshot);
  const result: CheckpointResult = {
    state: 'restart',
    crs: manifest.crs.name,
    pid: currentPid(),
    previousPid: manifest.process.pid,
    hostname: hostname(),
    previousHostname: manifest.host,
    snapshot: { store: snapshot.store, seq: snapshot.seq, dir: snapshot.dir },
  };
  await runHooks('restart', result);
  return result;
}
