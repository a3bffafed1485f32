// CRIU for a user other than root: its unprivileged mode (CRIU ≥ 3.19), which
// works through file capabilities on the binary (`ckpt setup criu --for-users
// GROUP`) and limits CRIU to the caller's own processes.
import { runTool } from '../../util/spawn.js';
import { isExecutable } from './programs.js';

/** The extra arguments a caller other than root gives every CRIU command. */
export function unprivilegedArgs(euid = process.geteuid?.() ?? 0): string[] {
  return euid === 0 ? [] : ['--unprivileged'];
}

/**
 * The file capabilities a CRIU run by a user other than root needs here:
 * cap_checkpoint_restore for dump and restore, cap_setpcap for the restorer to
 * drop the capabilities it cannot keep (this kernel's bounding set lacks some).
 */
export const USER_CRIU_CAPS = ['cap_checkpoint_restore', 'cap_setpcap'] as const;
export const USER_CRIU_SETCAP = `${USER_CRIU_CAPS.join(',')}+eip`;

export const FOR_USERS_HINT = 'as root: `ckpt setup criu --for-users GROUP` (a CRIU with file capabilities for the members of GROUP)';

/**
 * The file capabilities of a binary as `getcap` shows them (`cap_a,cap_b=eip`):
 * the names present in both the permitted and effective sets; undefined when
 * getcap is not installed.
 */
export async function fileCapabilities(path: string): Promise<string[] | undefined> {
  const getcap = ['/usr/sbin/getcap', '/sbin/getcap', '/usr/bin/getcap'].find(isExecutable);
  if (!getcap) return undefined;
  try {
    const r = await runTool(getcap, [path], { timeoutMs: 10_000 });
    if (r.code !== 0) return undefined;
    return parseGetcap(r.stdout);
  } catch {
    return undefined;
  }
}

/** `PATH cap_setpcap,cap_checkpoint_restore=eip` (libcap 2.x) → the names with both e and p. */
export function parseGetcap(text: string): string[] {
  const out: string[] = [];
  const line = text.trim().split('\n')[0] ?? '';
  // After the path: clauses like `cap_a,cap_b=eip` or `cap_a+ep cap_b+p`.
  const clauses = line.split(/\s+/).slice(1).join(' ').split(/\s+/);
  for (const clause of clauses) {
    const m = /^([\w,]+)[=+]([eip]+)$/.exec(clause);
    if (!m?.[1] || !m[2]) continue;
    if (!m[2].includes('e') || !m[2].includes('p')) continue;
    for (const name of m[1].split(',')) if (name && !out.includes(name.toLowerCase())) out.push(name.toLowerCase());
  }
  return out;
}

/** Which of the capabilities a user's CRIU needs `caps` lacks. */
export function missingUserCaps(caps: readonly string[]): string[] {
  return USER_CRIU_CAPS.filter((c) => !caps.includes(c) && !caps.includes('all'));
}
