// Resuming a process tree that a checkpoint left stopped. CRIU's leave-stopped (and a
// job's --stop) stops every process of the tree, so a SIGCONT to its root alone
// would leave its children stopped: each stopped member gets its own.
import { ownerUid, processTree, readStat } from './procfs.js';
import { signalPid } from './signals.js';

/**
 * Sends SIGCONT to every stopped process (state T) of the tree under `root`, found
 * through /proc (a stopped tree cannot fork or exit meanwhile), deepest first; never
 * a pid ≤ 1 (signalPid refuses one). Unless we are root, a member that is not ours
 * is left alone (the kernel would refuse it anyway). Returns the pids resumed.
 */
export function continueStoppedTree(root: number): number[] {
  const uid = process.geteuid?.();
  const resumed: number[] = [];
  for (const pid of processTree(root).reverse()) {
    if (pid <= 1) continue;
    if (readStat(pid)?.state !== 'T') continue;
    if (uid !== undefined && uid !== 0 && ownerUid(pid) !== uid) continue;
    if (signalPid(pid, 'SIGCONT')) resumed.push(pid);
  }
  return resumed;
}

/**
 * Kills every process of the tree under `root` (SIGKILL), deepest first, then the
 * root: a member that left the root's process group (setsid) is not reached by a
 * signal to the group, and a tree a dump left stopped would keep it stopped forever.
 * Found through /proc; a running tree may fork meanwhile, so the caller still signals
 * the group. Never a pid ≤ 1. Returns the pids signalled.
 */
export function killTree(root: number): number[] {
  const killed: number[] = [];
  for (const pid of processTree(root).reverse()) {
    try {
      if (pid > 1 && signalPid(pid, 'SIGKILL')) killed.push(pid);
    } catch {
      // not ours (EPERM): the kernel would refuse it to the group signal too
    }
  }
  return killed;
}
