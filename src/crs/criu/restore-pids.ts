// The pids of a CRIU restore: CRIU gives the tree its original pids, so each must be
// free first (a zombie is waited for, a live process refused), a restore that lost a
// race for one is run again, and the root a failed restore killed is reaped.
import { setTimeout as sleep } from 'node:timers/promises';
import { CriuError, ErrorCodes, ProcessError } from '../../errors.js';
import { native } from '../../util/native.js';
import { readStat } from '../../util/procfs.js';

/**
 * CRIU restores the original pids. A pid still held by a zombie frees up once
 * init reaps it (slowly, on these machines); one held by a live process is an error.
 * No event says a zombie that is not ours was reaped: it is looked at again after
 * 1, 2, 4 … 50 ms, so that a pid freed at once costs a millisecond, not 50.
 */
export async function waitForPids(pids: number[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = 1;
  for (const pid of pids) {
    for (;;) {
      const st = readStat(pid);
      if (!st) break;
      if (st.state !== 'Z' && st.state !== 'X') {
        throw new ProcessError(
          ErrorCodes.PID_TAKEN,
          `pid ${pid} is taken by a running process (${st.comm}); a CRIU restore needs the snapshot's original pids`,
          { hint: 'stop the original process first (checkpoint with --kill), or restore in a new PID namespace' },
        );
      }
      if (Date.now() > deadline) {
        throw new ProcessError(ErrorCodes.PID_TAKEN, `pid ${pid} is still held by an unreaped zombie after ${timeoutMs} ms`);
      }
      await sleep(pause);
      pause = Math.min(50, pause * 2);
    }
  }
}

/**
 * Runs a restore again while a pid it needs is still being released: an unreaped
 * zombie (init reaps slowly here), or a process that has left /proc but whose pid
 * the kernel has not freed yet (fork with it fails with EEXIST). Bounded: 5 s.
 */
export async function whilePidsSettle<T>(restore: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await restore();
    } catch (err) {
      const pid = Number(/Can't fork for (\d+)/.exec(err instanceof CriuError ? err.criuErrors.join('\n') : '')?.[1]);
      const st = pid > 1 ? readStat(pid) : undefined;
      if (Date.now() > deadline || !(err instanceof CriuError) || err.code !== ErrorCodes.PID_TAKEN || !(pid > 1) || (st && st.state !== 'Z')) throw err;
      if (st) await waitForPids([pid], Math.max(0, deadline - Date.now()));
      else await sleep(100);
    }
  }
}

/** Which of `pids` are our children already (before a restore: not its to reap). */
export const ourChildren = (pids: number[]): number[] => pids.filter((pid) => pid > 1 && readStat(pid)?.ppid === process.pid);

/**
 * After a failed restore: a restored root that was our child (rst_sibling) and that
 * CRIU killed is reaped, so that nothing of the tree is left, not even its zombie
 * (and a restore of the same pids in this process does not wait for it). Only our
 * own children, only once they are dead or dying (CRIU sent SIGKILL); bounded.
 */
export async function reapKilledChildren(pids: number[], timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const pid of pids) {
    while (pid > 1 && readStat(pid)?.ppid === process.pid) {
      if (readStat(pid)?.state === 'Z' && native().waitpidNoHang(pid)) break;
      if (Date.now() > deadline) return;
      await sleep(10);
    }
  }
}
