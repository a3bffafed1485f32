// What a snapshot records about the process it holds, read from /proc.
import { readFileSync, readlinkSync } from 'node:fs';
import { CkptError, ErrorCodes } from '../errors.js';
import type { ProcessRecord } from './manifest.js';
import { recordEnv, type RecordedEnv } from './env.js';
import { cmdline, fdTarget, ownerUid, processTree, readStat } from '../util/procfs.js';

/** Variables that describe one run of ckpt and must not leak into a restart. */
const TRANSIENT_ENV = ['CKPT_RESTART_SNAPSHOT'];

/** Our pid as /proc sees it: `process.pid` is fixed at start-up and goes stale after a restore. */
export function currentPid(): number {
  return Number(readlinkSync('/proc/self'));
}

const transient = (name: string): boolean => TRANSIENT_ENV.includes(name);

function environ(pid: number | 'self'): RecordedEnv {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return recordEnv(env, transient);
}

/**
 * CRIU needs `shell_job` when the tree's session or process group is led from
 * outside it (a process started from a shell or a test runner).
 */
export function needsShellJob(pid: number): boolean {
  const st = readStat(pid);
  return !st || st.sid !== pid || st.pgid !== pid;
}

export function recordOf(pid: number): ProcessRecord {
  const uid = ownerUid(pid);
  if (uid === undefined) throw new CkptError(ErrorCodes.NO_SUCH_PROCESS, `no process with pid ${pid}`);
  return {
    pid,
    tree: processTree(pid),
    argv: cmdline(pid),
    cwd: readlinkSync(`/proc/${pid}/cwd`),
    ...environ(pid),
    stdio: [0, 1, 2].map((fd) => fdTarget(pid, fd) ?? null),
    shellJob: needsShellJob(pid),
    tcpEstablished: true,
    uid,
  };
}

export function recordOfSelf(): ProcessRecord {
  const pid = currentPid();
  return {
    ...recordOf(pid),
    // Node may have rewritten its argv; this is the command that starts this program again.
    argv: [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    cwd: process.cwd(),
    ...recordEnv(process.env, transient),
  };
}
