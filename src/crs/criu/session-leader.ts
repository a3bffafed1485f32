// A process whose session is led from outside its pid namespace: CRIU refuses it.
// Found before anything is frozen, with the way out; a process checkpointing itself
// takes a session of its own instead.
import { CkptError, ErrorCodes } from '../../errors.js';
import type { ProcessRecord } from '../../store/manifest.js';
import { needsShellJob } from '../../store/record.js';
import { native } from '../../util/native.js';
import { readStat } from '../../util/procfs.js';

const SESSION_HINT = 'start it in a session of its own (`setsid PROGRAM`), or run it under `ckpt run --isolate`';

/**
 * CRIU refuses a process whose session is led from outside its pid namespace
 * (its session id reads 0 there): a program started by a harness that entered
 * a container's pid namespace without a session of its own. Found before any
 * freezing, with the way out, rather than as one line deep in CRIU's log.
 */
export function sessionLedFromOutside(pids: number[]): number | undefined {
  return pids.find((pid) => readStat(pid)?.sid === 0);
}

export function sessionError(pid: number, cause?: unknown): CkptError {
  return new CkptError(
    ErrorCodes.SESSION_OUTSIDE,
    `CRIU cannot checkpoint pid ${pid}: the leader of its session is outside its pid namespace`,
    { cause, hint: SESSION_HINT, details: { pid } },
  );
}

/**
 * A process checkpointing itself whose session is led from outside its pid
 * namespace becomes the leader of a new session, which CRIU can dump. It was
 * already cut off from that session's terminal job control (the leader is
 * invisible to it), so nothing it could use is lost.
 */
export function ensureOwnSession(record: ProcessRecord, onProgress?: (m: string) => void): void {
  if (readStat(record.pid)?.sid !== 0) return;
  try {
    native().setsid();
  } catch (cause) {
    throw sessionError(record.pid, cause);
  }
  onProgress?.('this process now leads a session of its own (its session was led from outside its pid namespace)');
  record.shellJob = needsShellJob(record.pid);
}
