// Signalling other processes safely. As root, kill(-1) reaches every process on
// the machine and kill(0) our own group: no pid at or below 1 is ever signalled.
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';

export function assertSafePid(pid: number, what = 'pid'): void {
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    throw new CkptError(ErrorCodes.UNSAFE_PID, `refusing to signal ${what} ${pid}: only pids above 1 are ever signalled`);
  }
}

/** Sends a signal to a pid (> 1); false if it no longer exists. */
export function signalPid(pid: number, signal: NodeJS.Signals | 0): boolean {
  assertSafePid(pid);
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
    throw err;
  }
}

/** Sends a signal to a process group (pgid > 1); false if the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  assertSafePid(pgid, 'process group');
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
    throw err;
  }
}

export function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
