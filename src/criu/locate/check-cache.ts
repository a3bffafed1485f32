// The cache of passing `criu check` runs, kept in the state dir, per binary
// (real path, mtime, size), kernel release and user: a check takes a while and
// its answer changes only with one of those.
import { mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/fsx.js';
import { stateDir } from '../../util/paths.js';
import { isExecutable } from './programs.js';

export interface CheckCacheEntry {
  ok: true;
  version: string;
  checkedAt: string;
}

function cacheFile(): string {
  return join(stateDir(), 'criu-check.json');
}

/** The cache key of a binary for the running kernel and user; undefined when it cannot be stat'ed. */
export function checkCacheKey(path: string): string | undefined {
  try {
    const real = realpathSync(path);
    const st = statSync(real);
    const euid = process.geteuid?.() ?? -1;
    return `${real}|${st.mtimeMs}|${st.size}|${release()}|uid=${euid}`;
  } catch {
    return undefined;
  }
}

function readCache(): Record<string, CheckCacheEntry> {
  try {
    const data = JSON.parse(readFileSync(cacheFile(), 'utf8')) as unknown;
    return data && typeof data === 'object' ? (data as Record<string, CheckCacheEntry>) : {};
  } catch {
    return {};
  }
}

/** Whether a passing check is recorded under key. */
export function cachedPass(key: string): boolean {
  return readCache()[key]?.ok === true;
}

/**
 * The version recorded with a passing check of this binary (same real path, mtime,
 * size, kernel and user): it saves running `criu --version` in every ckpt command.
 */
export function cachedVersion(path: string): string | undefined {
  const key = checkCacheKey(path);
  const version = key === undefined ? undefined : readCache()[key]?.version;
  return typeof version === 'string' ? version : undefined;
}

/** Records a passing check; never fails (a read-only state dir only costs a re-check next time). */
export function recordPass(key: string, entry: CheckCacheEntry): void {
  try {
    const all = readCache();
    // Drop entries for other kernels or binaries that no longer exist.
    for (const k of Object.keys(all)) {
      const [p, , , rel] = k.split('|');
      if (rel !== release() || !p || !isExecutable(p)) delete all[k];
    }
    all[key] = entry;
    mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
    writeFileAtomic(cacheFile(), `${JSON.stringify(all, null, 2)}\n`);
  } catch {
    // see above
  }
}
