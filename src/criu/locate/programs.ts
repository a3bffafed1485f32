// Finding programs on this machine: executable files on PATH and in the usual
// system directories, the way a shell would but also where PATH does not reach
// (sudo and services often run with a short PATH).
import { realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { openToOthers } from '../../util/closed-path.js';
import { isExecutableFile } from '../../util/command.js';

/** The sbin directories, where system tools live even when PATH leaves them out. */
export const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'] as const;
/** sbin and bin directories, searched after PATH for the tools `ckpt setup criu` runs. */
export const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;

/** A regular file the caller may execute. */
export const isExecutable = isExecutableFile;

/** path with its symlinks resolved, or path itself when it cannot be. */
export function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Every executable `name` in PATH's absolute directories, then in `extraDirs`,
 * in that order; a file reached twice (the same directory, or symlinks to one
 * file) is listed once, under its first path.
 */
export function findPrograms(name: string, env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = SYSTEM_DIRS): string[] {
  const dirs = (env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/'));
  for (const d of extraDirs) if (!dirs.includes(d)) dirs.push(d);
  const out: string[] = [];
  for (const d of dirs) {
    const p = join(d, name);
    if (!isExecutable(p)) continue;
    const real = realOrSelf(p);
    if (!out.some((q) => q === p || realOrSelf(q) === real)) out.push(p);
  }
  return out;
}

/**
 * The first executable `name` on PATH or in the system directories; as root, the first
 * one nobody else could replace (util/trusted-tool.ts: root runs what it finds).
 */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const found = findPrograms(name, env);
  return process.geteuid?.() === 0 ? found.find((p) => openToOthers(p, [0]) === undefined) : found[0];
}
