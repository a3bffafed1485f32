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
  /** Features CRIU's FEATURE_CHECK found with this binary and kernel (`lazyPages`): asked once. */
  features?: string[];
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

/**
 * The file as read once by this process (a command asks for the version and the
 * check of every candidate, twice over: probe, then findCriu): by file name, since
 * CKPT_STATE_DIR may change between calls (tests). A pass another process records
 * meanwhile is only missed until the next process (a check run once more).
 */
let read: { file: string; entries: Record<string, CheckCacheEntry> } | undefined;

function readCache(): Record<string, CheckCacheEntry> {
  const file = cacheFile();
  if (read?.file === file) return read.entries;
  let entries: Record<string, CheckCacheEntry> = {};
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (data && typeof data === 'object') entries = data as Record<string, CheckCacheEntry>;
  } catch {
    // none yet, or unreadable: no cached pass
  }
  read = { file, entries };
  return entries;
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

/** Whether CRIU's feature check found `feature` with this binary, kernel and user (only a yes is kept). */
export function cachedFeature(path: string, feature: string): boolean {
  const key = checkCacheKey(path);
  const features = key === undefined ? undefined : readCache()[key]?.features;
  return Array.isArray(features) && features.includes(feature);
}

/** Records a feature found, beside the binary's recorded pass (none recorded: nothing kept). Never fails. */
export function recordFeature(path: string, feature: string): void {
  const key = checkCacheKey(path);
  const entry = key === undefined ? undefined : readCache()[key];
  if (!key || entry?.ok !== true) return;
  const known = Array.isArray(entry.features) ? entry.features : [];
  if (!known.includes(feature)) recordPass(key, { ...entry, features: [...known, feature] });
}

/** Records a passing check; never fails (a read-only state dir only costs a re-check next time). */
export function recordPass(key: string, entry: CheckCacheEntry): void {
  try {
    const all = { ...readCache() };
    // Drop entries for other kernels or binaries that no longer exist.
    for (const k of Object.keys(all)) {
      const [p, , , rel] = k.split('|');
      if (rel !== release() || !p || !isExecutable(p)) delete all[k];
    }
    all[key] = entry;
    mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
    writeFileAtomic(cacheFile(), `${JSON.stringify(all, null, 2)}\n`);
    read = { file: cacheFile(), entries: all };
  } catch {
    // see above
  }
}
