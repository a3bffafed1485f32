// CRIU's version: parsing `criu --version`, comparing, and the minimum ckpt needs
// (older ones fail on TCP sockets with Linux ≥ 6.16).
import { statSync } from 'node:fs';
import { CkptError, ErrorCodes, errnoCode } from '../../errors.js';
import { runTool } from '../../util/spawn.js';
import { cachedVersion } from './check-cache.js';
import { SETUP_HINT } from './paths.js';

export interface CriuVersion {
  major: number;
  minor: number;
  sublevel: number;
}

export const MIN_CRIU_VERSION: CriuVersion = { major: 4, minor: 2, sublevel: 0 };

export function formatVersion(v: CriuVersion): string {
  return `${v.major}.${v.minor}.${v.sublevel}`;
}

export function compareVersions(a: CriuVersion, b: CriuVersion): number {
  return a.major - b.major || a.minor - b.minor || a.sublevel - b.sublevel;
}

/** Parses `criu --version` output (`Version: 4.2.1`, `Version: 4.2`). */
export function parseCriuVersion(text: string): CriuVersion | undefined {
  const m = /^Version:\s*(\d+)\.(\d+)(?:\.(\d+))?/m.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), sublevel: Number(m[3] ?? 0) };
}

/** `criu --version` answers, per binary (path, size, mtime), for the life of this process. */
const versions = new Map<string, CriuVersion>();

/**
 * Runs `criu --version` (once per binary and process, and not at all when a passing
 * `criu check` of this very binary recorded it); throws only when it cannot run at all.
 */
export async function criuVersion(path: string): Promise<CriuVersion> {
  let key: string | undefined;
  try {
    const st = statSync(path);
    key = `${path}\0${st.size}\0${st.mtimeMs}`;
  } catch {
    // reported below by running it
  }
  const known = key === undefined ? undefined : versions.get(key);
  if (known) return known;
  const recorded = cachedVersion(path);
  const v = (recorded === undefined ? undefined : parseCriuVersion(`Version: ${recorded}`)) ?? (await runCriuVersion(path));
  if (key !== undefined) versions.set(key, v);
  return v;
}

async function runCriuVersion(path: string): Promise<CriuVersion> {
  let out: string;
  try {
    const r = await runTool(path, ['--version'], { timeoutMs: 15_000 });
    out = `${r.stdout}\n${r.stderr}`;
    const v = parseCriuVersion(out);
    if (r.code === 0 && v) return v;
    throw new CkptError(ErrorCodes.CRIU_CHECK_FAILED, `${path} --version failed: ${firstLine(out) || `exit ${r.code ?? r.signal}`}`, {
      hint: SETUP_HINT,
      details: { path },
    });
  } catch (err) {
    if (err instanceof CkptError) throw err;
    throw new CkptError(ErrorCodes.CRIU_NOT_FOUND, `cannot run ${path}: ${errnoCode(err) ?? String(err)}`, {
      hint: SETUP_HINT,
      cause: err,
      details: { path },
    });
  }
}

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
}
