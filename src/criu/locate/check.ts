// `criu check`: whether a CRIU works on this kernel (`--unprivileged` for a user
// other than root), answered from the cache of passing checks when it can be.
import { errnoCode } from '../../errors.js';
import { runTool } from '../../util/spawn.js';
import { unprivilegedArgs } from './caps.js';
import { cachedPass, checkCacheKey, recordPass } from './check-cache.js';
import { formatVersion, type CriuVersion } from './version.js';

export interface CheckOutcome {
  ok: boolean;
  /** True when the result came from the cache rather than a fresh `criu check`. */
  cached: boolean;
  /** criu's own reason when the check failed. */
  error?: string;
}

/** The line of criu's output naming why a check failed: its first `Error` line, else its last line. */
export function criuErrorLine(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const err = lines.find((l) => /\bError\b/.test(l) && !/RLIMIT_NOFILE/.test(l));
  const line = err ?? lines.filter((l) => !/RLIMIT_NOFILE/.test(l)).at(-1) ?? lines.at(-1) ?? '';
  // "(00.012345) Error (criu/vdso.c:123): vdso: ..." → "vdso: ..."
  return line.replace(/^\(\s*[\d.]+\)\s*/, '').replace(/^Error\s*\([^)]*\):\s*/, '');
}

/** Runs `criu check` (or answers from the cache). Never throws for a failing check. */
export async function checkCriu(path: string, version: CriuVersion, options: { cache?: boolean } = {}): Promise<CheckOutcome> {
  const key = checkCacheKey(path);
  if (key && options.cache !== false && cachedPass(key)) return { ok: true, cached: true };
  let r;
  try {
    r = await runTool(path, ['check', ...unprivilegedArgs()], { timeoutMs: 60_000 });
  } catch (err) {
    return { ok: false, cached: false, error: `cannot run ${path}: ${errnoCode(err) ?? String(err)}` };
  }
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.code === 0 && /Looks good/.test(out)) {
    if (key) recordPass(key, { ok: true, version: formatVersion(version), checkedAt: new Date().toISOString() });
    return { ok: true, cached: false };
  }
  const why = criuErrorLine(out) || (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`);
  return { ok: false, cached: false, error: why };
}
