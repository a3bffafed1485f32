// Signalling other processes safely. As root, kill(-1) reaches every process on
// the machine and kill(0) our own group: no pid at or below 1 is ever signalled.
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';

export function assertSafePid(pid: number, what = 'pid'): void {
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    throw new CkptError(ErrorCodes.UNSAFE_PID, `refusing to signal ${what} ${pid}: only pids above 1 are ever signalled`);
  }
}

/** EPERM: a process of another user (and we are not root): one coded line, not an internal error. */
function notPermitted(err: unknown, pid: number): unknown {
  if (errnoCode(err) !== 'EPERM') return err;
  return new CkptError(ErrorCodes.PERMISSION, `not permitted to signal ${pid}: it belongs to another user`, { cause: err });
}

/** Sends a signal to a pid (> 1); false if it no longer exists. */
export function signalPid(pid: number, signal: NodeJS.Signals | 0): boolean {
  assertSafePid(pid);
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
    throw notPermitted(err, pid);
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
    throw notPermitted(err, pgid);
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

let inspectorSignalHeld = false;
/**
 * Node opens its inspector (a debugger port any local user can reach) on SIGUSR1 —
 * the signal Slurm sends ahead of a time limit. Any listener stops that; ckpt's
 * processes (the CLI, coordinators, ranks) install this one at start.
 */
export function holdInspectorSignal(): void {
  if (inspectorSignalHeld) return;
  inspectorSignalHeld = true;
  process.on('SIGUSR1', () => {});
}
