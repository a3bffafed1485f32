// Descriptors this process was started with beyond stdio and without close-on-exec
// (a root script's `200<secret`, a service manager's socket): every child would
// inherit them. Node's own descriptors are all close-on-exec, so these are the ones.
// A child that runs as another user must not get them: spawn() puts /dev/null in
// their place (`shielded`), the only way Node offers to touch a child's descriptors.
import type { StdioOptions } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** Our descriptors above 2 that a child would inherit. */
export function inheritedFds(): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fdinfo');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      // closed meanwhile (the listing's own descriptor)
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * Runs `spawn` (a spawn() or spawnSync() call) with `stdio` that puts /dev/null in
 * place of each inherited descriptor; the child has its descriptors once spawn() returns.
 */
export function shielded<R>(stdio: readonly Exclude<StdioOptions, string>[number][], spawn: (stdio: StdioOptions) => R): R {
  const devNull = openSync('/dev/null', 'r');
  try {
    return spawn(shieldStdio(stdio, devNull) as StdioOptions);
  } finally {
    closeSync(devNull);
  }
}

/** `stdio` with `devNull` (a descriptor of /dev/null) in place of each inherited descriptor. */
export function shieldStdio<T>(stdio: readonly T[], devNull: number): (T | number | 'ignore')[] {
  const fds = inheritedFds().filter((fd) => fd >= stdio.length && fd !== devNull);
  const out: (T | number | 'ignore')[] = [...stdio];
  if (!fds.length) return out;
  for (let i = out.length; i <= fds.at(-1)!; i++) out.push('ignore');
  for (const fd of fds) out[fd] = devNull;
  return out;
}
