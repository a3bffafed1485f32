// The agent is process 1 of its node's pid namespace (srun runs it under `unshare
// --pid`): every process orphaned there becomes its child. A criu rank's dump is one
// such: the rank starts CRIU from a detached `sh` that exits at once (so that CRIU is
// not in the tree it dumps), and CRIU, re-parented here, stays a zombie when it is
// done — one per rank per checkpoint, for as long as the job runs, unless reaped.
// Node reaps only the children it spawned itself, so the agent reaps the others: a
// zombie `criu` or `sh` child in a session whose leader is gone (the detached `sh`),
// never one of its own spawned children (each leads its session, or is in the agent's
// own) nor a rank, whose status Node or the rank's watcher waits for.
import { readdirSync, readFileSync } from 'node:fs';
import { native } from '../util/native.js';

/** Command name, state and session id of a process (/proc/PID/stat), or undefined once it is gone. */
function procStat(pid: number): { comm: string; state: string; sid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name (in parentheses, which may hold anything): state ppid pgrp session …
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), state: f[0]!, sid: Number(f[3]) };
  } catch {
    return undefined;
  }
}

/** What a rank's dump leaves here: CRIU, and the subshell that reports a dump which ends the job. */
const ORPHANS = /^(criu|sh)$/;

/** This process's children, whichever of its threads they belong to. */
function children(): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const text = readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
      if (text) for (const p of text.split(' ')) out.push(Number(p));
    }
  } catch {
    // no /proc children files (CONFIG_PROC_CHILDREN): nothing to reap this way
  }
  return out;
}

/** Reaps the zombies orphaned here, not `ranks`; returns how many. Never throws. */
export function reapOrphans(ranks: ReadonlySet<number>): number {
  const own = procStat(process.pid)?.sid;
  let reaped = 0;
  for (const pid of children()) {
    const st = procStat(pid);
    if (!st || st.state !== 'Z' || ranks.has(pid) || !ORPHANS.test(st.comm)) continue;
    if (st.sid === pid || st.sid === own || procStat(st.sid) !== undefined) continue;
    try {
      if (native().waitpidNoHang(pid)) reaped++;
    } catch {
      // reaped meanwhile, or no addon (then no criu dump ran here either)
    }
  }
  return reaped;
}

/** Reaps them every `everyMs` while the agent runs; returns the stop. */
export function reapOrphansEvery(everyMs: number, ranks: () => ReadonlySet<number>): () => void {
  const timer = setInterval(() => reapOrphans(ranks()), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
