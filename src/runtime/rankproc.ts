// A rank's process here, as the launcher holds it: spawned by us (a ChildProcess)
// or restored by CRIU as our child (a bare pid, reaped with waitpid). Either way
// it leads its own process group, which is what gets signalled.
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { native } from '../util/native.js';
import { signalGroup, signalPid } from '../util/signals.js';
import { killTree } from '../util/stopped-tree.js';
import { waitExit, type Exit } from '../util/spawn.js';
import type { RankProcess } from './starter.js';

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([name, no]) => [no, name as NodeJS.Signals]));

/** A local process-group leader as a RankProcess. */
function groupLeader(proc: Pick<RankProcess, 'pid' | 'stdout' | 'stderr' | 'exited' | 'hasExited'>): RankProcess {
  const leader: RankProcess = {
    get pid() {
      return proc.pid;
    },
    stdout: proc.stdout,
    stderr: proc.stderr,
    exited: proc.exited,
    get hasExited() {
      return proc.hasExited;
    },
    signal(signal) {
      const pid = proc.pid;
      if (pid === undefined || pid <= 1) return false;
      // A kill ends the rank's whole tree, members that left its group included (a
      // rank frozen by its dump for a checkpoint that ends the job is killed so).
      if (signal === 'SIGKILL') killTree(pid);
      return signalGroup(pid, signal);
    },
    terminate(graceMs) {
      return terminateGroup(leader, graceMs);
    },
  };
  return leader;
}

export function spawnedRank(child: ChildProcess): RankProcess {
  return groupLeader({
    get pid() {
      return child.pid;
    },
    stdout: child.stdout,
    stderr: child.stderr,
    exited: waitExit(child),
    get hasExited() {
      return child.exitCode !== null || child.signalCode !== null;
    },
  });
}

/**
 * A process CRIU restored as our child (rst_sibling). Its exit is polled with
 * waitpid(WNOHANG): a blocking waitpid would hold a libuv pool thread for the
 * rank's whole life, and a job has many ranks.
 */
export function restoredRank(pid: number, stdout: Readable | null, stderr: Readable | null, pollMs = 50): RankProcess {
  if (!(pid > 1)) throw new RangeError(`not a restored pid: ${pid}`);
  let done = false;
  const exited = new Promise<Exit>((resolve) => {
    const timer = setInterval(() => {
      let st: { code: number | null; signal: number | null } | null;
      try {
        st = native().waitpidNoHang(pid);
      } catch {
        // ECHILD: somebody else reaped it; its status is lost.
        st = { code: null, signal: null };
      }
      if (!st) return;
      clearInterval(timer);
      done = true;
      resolve({ code: st.code, signal: st.signal === null ? null : (SIGNAL_NAMES.get(st.signal) ?? null) });
    }, pollMs);
  });
  return groupLeader({
    pid,
    stdout,
    stderr,
    exited,
    get hasExited() {
      return done;
    },
  });
}

/** Ends a rank's process group: SIGTERM, then SIGKILL after `graceMs`. Resolves when the rank has exited. */
async function terminateGroup(p: RankProcess, graceMs: number): Promise<Exit> {
  const pid = p.pid;
  if (pid === undefined || pid <= 1) return p.exited;
  if (!p.hasExited) signalGroup(pid, 'SIGTERM') || signalPid(pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
    // The leader is gone; members that ignored SIGTERM must not outlive it.
    signalGroup(pid, 'SIGKILL');
  }
}
