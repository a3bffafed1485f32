// What an interrupted checkpoint of another process tree owes it: to be left as it
// was. CRIU rolls a refused dump back and lets the tree run on; should it not (it
// died, or a SIGSTOP queued for --stop was delivered before the abort), any process
// of the tree that stopped since the checkpoint began is continued.
import { processTree, readStat } from '../util/procfs.js';
import { signalPid } from '../util/signals.js';

/** Which processes of the tree at `pid` are stopped now (job control: state T). */
export function stoppedIn(pid: number): Set<number> {
  return new Set(processTree(pid).filter((p) => readStat(p)?.state === 'T'));
}

/**
 * Continues every process of the tree at `pid` that is stopped now but was not in
 * `before` (stopped by the user before the checkpoint: left so). Returns their pids.
 */
export function resumeStoppedSince(pid: number, before: Set<number>): number[] {
  const resumed: number[] = [];
  for (const p of processTree(pid)) {
    if (before.has(p) || readStat(p)?.state !== 'T') continue;
    signalPid(p, 'SIGCONT');
    resumed.push(p);
  }
  return resumed;
}
