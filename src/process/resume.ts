// `ckpt resume PID`: a process tree left stopped by a checkpoint (`ckpt checkpoint
// --pid P --stop`, `checkpoint({ then: 'stop' })`) runs again — the whole tree, not
// only its root, which is all a plain SIGCONT would reach.
import { CkptError, ErrorCodes, ProcessError } from '../errors.js';
import { ownerUid, readStat } from '../util/procfs.js';
import { assertSafePid } from '../util/signals.js';
import { continueStoppedTree } from '../util/stopped-tree.js';

/**
 * Lets every stopped process of the tree under `pid` run again; returns their pids
 * (none when nothing of it was stopped). Refuses pid ≤ 1, a pid that is gone, and,
 * unless we are root, another user's process.
 */
export function resumeProcess(pid: number): number[] {
  assertSafePid(pid);
  const st = readStat(pid);
  if (!st || st.state === 'Z') throw new ProcessError(ErrorCodes.NO_SUCH_PROCESS, `no process with pid ${pid}`);
  const uid = process.geteuid?.();
  const owner = ownerUid(pid);
  if (uid !== undefined && uid !== 0 && owner !== uid) {
    throw new CkptError(ErrorCodes.PERMISSION, `not permitted to resume process ${pid}: it belongs to uid ${owner}, not to you`);
  }
  return continueStoppedTree(pid);
}
