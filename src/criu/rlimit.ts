// A CRIU dump that failed on another user's rlimits: root without CAP_SYS_RESOURCE
// may not prlimit(2) another user's process, and CRIU reads every task's rlimits. The
// failure, said in one line with which process, whose, and the way out.
import { readFileSync } from 'node:fs';

export function uidOf(pid: number): number | undefined {
  try {
    const m = /^Uid:\s*\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface RlimitFailure {
  /** One line: what is wrong. */
  message: string;
  /** What to do. */
  hint: string;
  pid?: number;
  uid?: number;
}

/**
 * A dump that failed because CRIU could not read a task's rlimits (prlimit(2) on
 * another user's process without CAP_SYS_RESOURCE): says which process, whose, why
 * and what to do. `remedy` is the way out for the caller's kind of checkpoint.
 */
export function rlimitFailure(what: string, criuErrors: string[], logPath: string | undefined, remedy: string): RlimitFailure | undefined {
  const line = criuErrors.find((l) => /Can't get rlimit \d+: Operation not permitted/.test(l));
  if (!line) return undefined;
  let pid: number | undefined;
  let comm: string | undefined;
  try {
    const text = readFileSync(logPath ?? '', 'utf8');
    const upTo = text.slice(0, Math.max(0, text.indexOf("Can't get rlimit")));
    const all = [...upTo.matchAll(/Dumping task \(pid: (\d+) comm: ([^)]*)\)/g)];
    const last = all.at(-1);
    if (last) {
      pid = Number(last[1]);
      comm = last[2];
    }
  } catch {
    // no log: the message goes without the process
  }
  const uid = pid ? uidOf(pid) : undefined;
  const who = pid ? `process ${pid}${comm ? ` (${comm})` : ''}${uid !== undefined ? ` runs as uid ${uid}` : ' runs as another user'}` : 'a process runs as another user';
  return {
    message: `${what} failed: ${who}, and without CAP_SYS_RESOURCE root may not read another user's rlimits (CRIU: ${line.replace(/ \(criu\/[^)]*\)$/, '')})`,
    hint: remedy,
    pid,
    uid,
  };
}

/** The remedy for `ckpt checkpoint --pid` of a tree holding other users' processes. */
export const PID_RLIMIT_REMEDY =
  "start the tree under `ckpt run --isolate` (its user namespace, owned by root, lets root dump every user's processes), or run ckpt with CAP_SYS_RESOURCE";
