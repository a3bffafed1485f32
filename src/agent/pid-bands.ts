// Pids for ranks that CRIU may restore on another node. A criu rank comes back with
// the very pids it had, so two ranks dumped on different nodes must never share one,
// and the restoring agent's own processes must not hold them. As pid 1 of its own
// pid namespace an agent can choose: rank r's processes start at band(r), far above
// the agent's threads and CRIU's helpers, and distinct for every rank of the job.
import { readFileSync, writeFileSync } from 'node:fs';

/** Pids below this are the agent's own (its threads, CRIU's processes at a restore). */
const FIRST = 1000;
/** At most this many pids per rank. */
const MAX_BAND = 1000;

/** We choose our children's pids: pid 1 of a namespace whose /proc is ours (unshare --pid --mount-proc). */
export function ownsPidNamespace(): boolean {
  return process.pid === 1;
}

/** The first pid of rank `rank` of `size`, within the namespace's pid_max. */
export function bandStart(rank: number, size: number, pidMax: number): number {
  const band = Math.min(MAX_BAND, Math.floor((pidMax - FIRST) / Math.max(1, size)));
  return FIRST + rank * band;
}

/** The next process created gets pid `pid` (if free): best effort, nothing else forks in between. */
export function nextPid(rank: number, size: number): void {
  if (!ownsPidNamespace()) return;
  try {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(bandStart(rank, size, pidMax) - 1));
  } catch {
    // Not ours to set (no CAP_SYS_ADMIN there): pids are whatever the kernel gives.
  }
}
