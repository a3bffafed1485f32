// User namespaces and other users' processes. Root on these machines may lack
// CAP_SYS_RESOURCE; the kernel then refuses it prlimit(2) on another user's process,
// and CRIU reads every task's rlimits with prlimit: a tree holding a process of
// another user cannot be dumped. Inside a user namespace owned by root, root has
// every capability over those processes, CAP_SYS_RESOURCE included: an isolated
// job runs in one (identity uid/gid map) and dumps whatever users it runs as.
import { readFileSync, readlinkSync } from 'node:fs';

/** Is `pid` in a user namespace other than ours? */
export function inUserns(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/user`) !== readlinkSync('/proc/self/ns/user');
  } catch {
    return false;
  }
}

/** Root's effective capabilities include CAP_SYS_RESOURCE (bit 24)? */
export function hasCapSysResource(pid: number | 'self' = 'self'): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n : false;
  } catch {
    return false;
  }
}

export { PID_RLIMIT_REMEDY, rlimitFailure, type RlimitFailure } from '../criu/rlimit.js';
import { uidOf } from '../criu/rlimit.js';
import { trustedTool } from '../util/trusted-tool.js';

/** The remedy for an isolated job started without a user namespace. */
export const ISOLATE_RLIMIT_REMEDY =
  'start the job without CKPT_ISOLATE_USERNS=0 (ckpt run --isolate then runs it in a user namespace owned by root), or run ckpt with CAP_SYS_RESOURCE';

/** A uid no account uses, for the probe's short-lived child. */
const PROBE_UID = 2_147_480_001;

export interface OtherUsersReport {
  /** Can root dump trees holding processes of other users, as such (`ckpt checkpoint --pid`)? */
  ok: boolean;
  /** Can it when they run under `ckpt run --isolate` (a user namespace owned by root)? */
  isolated: boolean;
  reason: string;
  consequence?: string;
  hint?: string;
}

async function prlimitOk(pid: number): Promise<{ ok: boolean; error: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    const p = spawn(trustedTool('prlimit'), ['--pid', String(pid), '--nofile', '--raw', '--noheadings'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('error', (e) => resolve({ ok: false, error: e.message }));
    p.on('close', (code) => resolve({ ok: code === 0, error: err.trim().split('\n')[0] ?? '' }));
  });
}

/** Waits (bounded) until `pid` runs as `uid` — the child has switched users and exec'd. */
async function untilUid(pid: number, uid: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const now = uidOf(pid);
    if (now === uid) return true;
    if (now === undefined) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** Runs `body` with a child that sleeps as PROBE_UID (in a user namespace of ours with `userns`), then kills it. */
async function withProbeChild<T>(userns: boolean, body: (pid: number) => Promise<T>): Promise<T | undefined> {
  const { spawn } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const sleep = trustedTool('sleep');
  const setpriv = [trustedTool('setpriv'), `--reuid=${PROBE_UID}`, `--regid=${PROBE_UID}`, '--clear-groups', sleep, '30'];
  const child = userns
    ? spawn(trustedTool('unshare'), ['--user', '--', '/bin/sh', '-c', 'echo userns; read go; exec "$@"', 'probe', ...setpriv], { stdio: ['pipe', 'pipe', 'ignore'] })
    : spawn(sleep, ['30'], { uid: PROBE_UID, gid: PROBE_UID, stdio: 'ignore' });
  child.on('error', () => {});
  child.stdin?.on('error', () => {});
  try {
    const pid = child.pid;
    if (!pid || pid <= 1) return undefined;
    if (userns) {
      const said = await new Promise<boolean>((resolve) => {
        child.stdout!.once('data', () => resolve(true));
        child.once('exit', () => resolve(false));
      });
      if (!said) return undefined;
      const map = '0 0 4294967295\n';
      writeFileSync(`/proc/${pid}/uid_map`, map);
      writeFileSync(`/proc/${pid}/gid_map`, map);
      child.stdin!.end('go\n');
    }
    if (!(await untilUid(pid, PROBE_UID))) return undefined;
    return await body(pid);
  } catch {
    return undefined;
  } finally {
    if (child.pid && child.pid > 1 && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/**
 * `ckpt doctor`: can this root dump another user's process? A short-lived child
 * under a throw-away uid, prlimit(2) on it as CRIU does — then the same in a user
 * namespace owned by root, as `ckpt run --isolate` runs jobs.
 */
export async function probeOtherUsers(): Promise<OtherUsersReport> {
  if (process.geteuid?.() !== 0) {
    return { ok: false, isolated: false, reason: 'not root: CRIU dumps only this user\'s own processes' };
  }
  if (hasCapSysResource()) return { ok: true, isolated: true, reason: 'root has CAP_SYS_RESOURCE' };
  const plain = await withProbeChild(false, prlimitOk);
  if (plain?.ok) return { ok: true, isolated: true, reason: "prlimit on another user's process works" };
  const inNs = await withProbeChild(true, prlimitOk);
  const isolated = inNs?.ok === true;
  return {
    ok: false,
    isolated,
    reason: `root lacks CAP_SYS_RESOURCE: prlimit on another user's process fails${plain?.error ? ` (${plain.error.replace(/^prlimit: /, '')})` : ''}`,
    consequence: "a tree holding processes of other users (a database, a server started with runuser) fails to dump: CRIU cannot read their rlimits",
    hint: isolated
      ? 'start such trees with ckpt run --isolate (they run in a user namespace owned by root, which can dump them), or give root CAP_SYS_RESOURCE'
      : 'give root CAP_SYS_RESOURCE (user namespaces do not help here either)',
  };
}
