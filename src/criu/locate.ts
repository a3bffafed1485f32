// Finding a CRIU that works on this machine: $CKPT_CRIU, then (for a user other
// than root) the copy `ckpt setup criu --for-users GROUP` made, then ckpt's private
// install (`ckpt setup criu`), then the system's. A CRIU qualifies when it is at
// least 4.2 (older ones fail on TCP sockets with Linux ≥ 6.16) and `criu check`
// passes (`--unprivileged` for a user, whose CRIU must also hold the file
// capabilities USER_CRIU_CAPS). The check's result is cached per binary, kernel and user.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { delimiter, join } from 'node:path';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { ROOT_TOOLS_DIR, stateDir, toolsDir } from '../util/paths.js';
import { spawnGroup, terminateGroup, waitExit, type RunResult } from '../util/spawn.js';

export interface CriuVersion {
  major: number;
  minor: number;
  sublevel: number;
}

export type CriuSource = 'env' | 'for-users' | 'private' | 'system';

/**
 * A caller other than root runs CRIU in its unprivileged mode (CRIU ≥ 3.19): the
 * binary holds CAP_CHECKPOINT_RESTORE (file capabilities, `ckpt setup criu
 * --for-users GROUP`) and CRIU limits itself to the caller's own processes.
 */
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

/** Where `ckpt setup criu --for-users GROUP` puts the copy of CRIU users run. */
export function forUsersCriuPath(): string {
  return join(ROOT_TOOLS_DIR, 'criu', 'for-users', 'criu');
}

export const FOR_USERS_HINT = 'as root: `ckpt setup criu --for-users GROUP` (a CRIU with file capabilities for the members of GROUP)';

/** A group's name (from /etc/group), or its number. */
export function groupName(gid: number): string {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && Number(id) === gid) return name;
    }
  } catch {
    // no /etc/group
  }
  return String(gid);
}

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

export interface CriuInfo {
  /** Absolute path of the criu binary to run. */
  path: string;
  version: CriuVersion;
  source: CriuSource;
}

export interface FindCriuOptions {
  /** false: run `criu check` even when a cached pass exists (and refresh the cache). Default true. */
  cache?: boolean;
  /** The private install root (default `toolsDir()/criu`); its binary is `<root>/current/usr/sbin/criu`. */
  privateRoot?: string;
  /** Environment to read CKPT_CRIU and PATH from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** For tests: where the for-users copy is looked for (default forUsersCriuPath()). */
  forUsersPath?: string;
}

/**
 * Runs a helper tool to completion with stdin closed (/dev/null) and collects its
 * output. Like spawn.ts `run`, but never writes to the child's stdin, so a child
 * that exits at once cannot raise EPIPE.
 */
export async function runTool(command: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const child = spawnGroup(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: options.env } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => void terminateGroup(child, 500), options.timeoutMs);
  try {
    const exit = await waitExit(child);
    // Let the pipes drain: 'exit' can come before the last 'data'.
    await Promise.all(
      [child.stdout, child.stderr].map((s) => (s && !s.readableEnded ? new Promise((r) => s.once('close', r)) : undefined)),
    );
    return { ...exit, stdout, stderr };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export const MIN_CRIU_VERSION: CriuVersion = { major: 4, minor: 2, sublevel: 0 };
export const SETUP_HINT = 'run `ckpt setup criu`';

/** Where `ckpt setup criu` installs by default: `<toolsDir>/criu`. */
export function defaultPrivateRoot(): string {
  return join(toolsDir(), 'criu');
}

/** The criu binary inside a private install root. */
export function privateCriuPath(root = defaultPrivateRoot()): string {
  return join(root, 'current', 'usr', 'sbin', 'criu');
}

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

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `criu --version` answers, per binary (path, size, mtime), for the life of this process. */
const versions = new Map<string, CriuVersion>();

/** Runs `criu --version` (once per binary and process); throws only when it cannot run at all. */
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
  const v = await runCriuVersion(path);
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

/** The line of criu's output naming why a check failed: its first `Error` line, else its last line. */
export function criuErrorLine(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const err = lines.find((l) => /\bError\b/.test(l) && !/RLIMIT_NOFILE/.test(l));
  const line = err ?? lines.filter((l) => !/RLIMIT_NOFILE/.test(l)).at(-1) ?? lines.at(-1) ?? '';
  // "(00.012345) Error (criu/vdso.c:123): vdso: ..." → "vdso: ..."
  return line.replace(/^\(\s*[\d.]+\)\s*/, '').replace(/^Error\s*\([^)]*\):\s*/, '');
}

// ---- the `criu check` cache ----

interface CheckCacheEntry {
  ok: true;
  version: string;
  checkedAt: string;
}

function cacheFile(): string {
  return join(stateDir(), 'criu-check.json');
}

function cacheKey(path: string): string | undefined {
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

function writeCache(key: string, entry: CheckCacheEntry): void {
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
    // A read-only state dir only costs a re-check next time.
  }
}

export interface CheckOutcome {
  ok: boolean;
  /** True when the result came from the cache rather than a fresh `criu check`. */
  cached: boolean;
  /** criu's own reason when the check failed. */
  error?: string;
}

/** Runs `criu check` (or answers from the cache). Never throws for a failing check. */
export async function checkCriu(path: string, version: CriuVersion, options: { cache?: boolean } = {}): Promise<CheckOutcome> {
  const key = cacheKey(path);
  if (key && options.cache !== false && readCache()[key]?.ok) return { ok: true, cached: true };
  let r;
  try {
    r = await runTool(path, ['check', ...unprivilegedArgs()], { timeoutMs: 60_000 });
  } catch (err) {
    return { ok: false, cached: false, error: `cannot run ${path}: ${errnoCode(err) ?? String(err)}` };
  }
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.code === 0 && /Looks good/.test(out)) {
    if (key) writeCache(key, { ok: true, version: formatVersion(version), checkedAt: new Date().toISOString() });
    return { ok: true, cached: false };
  }
  const why = criuErrorLine(out) || (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`);
  return { ok: false, cached: false, error: why };
}

// ---- candidates ----

interface Candidate {
  path: string;
  source: CriuSource;
  /** Why this one cannot be run by the caller at all (the for-users copy, not in its group). */
  unusable?: CkptError;
}

/** criu binaries on PATH and in the usual sbin directories, duplicates removed. */
export function systemCriuPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/'));
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(d)) dirs.push(d);
  const out: string[] = [];
  for (const d of dirs) {
    const p = join(d, 'criu');
    if (!isExecutable(p)) continue;
    let real = p;
    try {
      real = realpathSync(p);
    } catch {
      // keep p
    }
    if (!out.some((q) => q === p || safeReal(q) === real)) out.push(p);
  }
  return out;
}

function safeReal(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

interface Verdict {
  info?: CriuInfo;
  error?: CkptError;
  check?: CheckOutcome;
  versionText?: string;
}

async function judge(c: Candidate, cache: boolean | undefined): Promise<Verdict> {
  if (c.unusable) return { error: c.unusable };
  let version: CriuVersion;
  try {
    version = await criuVersion(c.path);
  } catch (err) {
    return { error: err as CkptError };
  }
  const where = c.source === 'env' ? `${c.path} (from CKPT_CRIU)` : c.path;
  if (compareVersions(version, MIN_CRIU_VERSION) < 0) {
    return {
      versionText: formatVersion(version),
      error: new CkptError(
        ErrorCodes.CRIU_TOO_OLD,
        `CRIU ${formatVersion(version)} at ${where} is too old: ckpt needs CRIU ≥ ${MIN_CRIU_VERSION.major}.${MIN_CRIU_VERSION.minor}`,
        { hint: SETUP_HINT, details: { path: c.path, source: c.source, version: formatVersion(version) } },
      ),
    };
  }
  const root = process.geteuid?.() === 0;
  if (!root) {
    // A user's CRIU works through its file capabilities: name exactly the missing ones.
    const caps = await fileCapabilities(c.path);
    const missing = caps ? missingUserCaps(caps) : [];
    if (caps && missing.length > 0) {
      const why = `lacks the file capabilit${missing.length > 1 ? 'ies' : 'y'} ${missing.join(', ')} (has: ${caps.join(',') || 'none'})`;
      return {
        versionText: formatVersion(version),
        check: { ok: false, cached: false, error: why },
        error: new CkptError(ErrorCodes.CRIU_CHECK_FAILED, `${where} cannot checkpoint as a user other than root: it ${why}`, {
          hint: `${FOR_USERS_HINT}; or as root: setcap ${USER_CRIU_SETCAP} ${safeReal(c.path)}`,
          details: { path: c.path, source: c.source, version: formatVersion(version), missingCapabilities: missing, capabilities: caps },
        }),
      };
    }
  }
  const check = await checkCriu(c.path, version, cache === undefined ? {} : { cache });
  if (!check.ok) {
    return {
      versionText: formatVersion(version),
      check,
      error: new CkptError(ErrorCodes.CRIU_CHECK_FAILED, `criu check${root ? '' : ' --unprivileged'} failed for ${where}: ${check.error}`, {
        hint: root ? SETUP_HINT : FOR_USERS_HINT,
        details: { path: c.path, source: c.source, version: formatVersion(version), criuError: check.error },
      }),
    };
  }
  return { info: { path: c.path, version, source: c.source }, check, versionText: formatVersion(version) };
}

/**
 * Whether one criu binary qualifies (≥ 4.2 and `criu check` passes). Throws
 * CRIU_NOT_FOUND / CRIU_TOO_OLD / CRIU_CHECK_FAILED.
 */
export async function qualifyCriu(path: string, source: CriuSource, options: { cache?: boolean } = {}): Promise<CriuInfo> {
  if (!isExecutable(path)) {
    throw new CkptError(ErrorCodes.CRIU_NOT_FOUND, `${path} is not an executable file`, { hint: SETUP_HINT, details: { path } });
  }
  const v = await judge({ path, source }, options.cache);
  if (v.info) return v.info;
  throw v.error ?? new CkptError(ErrorCodes.CRIU_CHECK_FAILED, `${path} does not qualify`, { hint: SETUP_HINT });
}

function candidates(options: FindCriuOptions): Candidate[] | CkptError {
  const env = options.env ?? process.env;
  const fromEnv = env.CKPT_CRIU;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      return new CkptError(ErrorCodes.CRIU_NOT_FOUND, `CKPT_CRIU names ${fromEnv}, which is not an executable file`, {
        hint: `fix or unset CKPT_CRIU, or ${SETUP_HINT}`,
        details: { path: fromEnv, source: 'env' },
      });
    }
    return [{ path: fromEnv, source: 'env' }];
  }
  const list: Candidate[] = [];
  // A user other than root can use only a CRIU with file capabilities: the copy
  // `ckpt setup criu --for-users GROUP` made for GROUP comes first.
  if (process.geteuid?.() !== 0 && options.privateRoot === undefined) {
    const users = options.forUsersPath ?? forUsersCriuPath();
    if (isExecutable(users)) list.push({ path: users, source: 'for-users' });
    else if (existsSync(users)) {
      let group = '?';
      try {
        group = groupName(statSync(users).gid);
      } catch {
        // unreadable: said below
      }
      list.push({
        path: users,
        source: 'for-users',
        unusable: new CkptError(ErrorCodes.PERMISSION, `${users} is CRIU for the members of group ${group}, and you are not one of them`, {
          hint: `ask an administrator to add you to group ${group} (then log in again)`,
          details: { path: users, group },
        }),
      });
    }
  }
  const priv = privateCriuPath(options.privateRoot);
  if (isExecutable(priv)) list.push({ path: priv, source: 'private' });
  // root's private install (`sudo ckpt setup criu`) serves other users too: they then
  // hear that CRIU needs root, not that it is missing.
  const rootInstall = privateCriuPath(join(ROOT_TOOLS_DIR, 'criu'));
  if (options.privateRoot === undefined && rootInstall !== priv && isExecutable(rootInstall)) list.push({ path: rootInstall, source: 'private' });
  for (const p of systemCriuPaths(env)) list.push({ path: p, source: 'system' });
  return list;
}

function notFound(options: FindCriuOptions): CkptError {
  return new CkptError(ErrorCodes.CRIU_NOT_FOUND, 'CRIU is not installed (no CKPT_CRIU, no private install, no criu on PATH)', {
    hint: SETUP_HINT,
    details: { privatePath: privateCriuPath(options.privateRoot) },
  });
}

/**
 * The CRIU ckpt will use. Tries $CKPT_CRIU (exclusively, when set), then the
 * private install, then criu on PATH / in /usr/sbin; returns the first that is
 * ≥ 4.2 and passes `criu check`. Throws CkptError CRIU_NOT_FOUND,
 * CRIU_TOO_OLD or CRIU_CHECK_FAILED (for the most preferred candidate found).
 */
export async function findCriu(options: FindCriuOptions = {}): Promise<CriuInfo> {
  const list = candidates(options);
  if (list instanceof CkptError) throw list;
  let firstError: CkptError | undefined;
  for (const c of list) {
    const v = await judge(c, options.cache);
    if (v.info) return v.info;
    firstError ??= v.error;
  }
  throw firstError ?? notFound(options);
}

// ---- a non-throwing report for `ckpt doctor` ----

export interface Privileges {
  root: boolean;
  /** CAP_SYS_ADMIN in the effective set (bit 21 of CapEff in /proc/self/status). */
  capSysAdmin: boolean;
  capEff?: string;
}

const CAP_SYS_ADMIN = 21n;

export function privileges(): Privileges {
  const root = process.geteuid?.() === 0;
  try {
    const m = /^CapEff:\s*([0-9a-fA-F]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m?.[1]) return { root, capSysAdmin: root };
    return { root, capSysAdmin: ((BigInt(`0x${m[1]}`) >> CAP_SYS_ADMIN) & 1n) === 1n, capEff: m[1] };
  } catch {
    return { root, capSysAdmin: false };
  }
}

export interface CriuProbeCandidate {
  path: string;
  source: CriuSource;
  version?: string;
  check: 'passed' | 'failed' | 'not-run';
  reason?: string;
}

export interface CriuProbe {
  /** A qualifying CRIU was found. */
  ok: boolean;
  found: boolean;
  path?: string;
  source?: CriuSource;
  version?: string;
  check: 'passed' | 'failed' | 'not-run';
  checkCached?: boolean;
  /** Why nothing qualifies (one line), when ok is false. */
  reason?: string;
  code?: string;
  hint?: string;
  kernel: string;
  privileges: Privileges;
  /** Every CRIU looked at, in order of preference. */
  candidates: CriuProbeCandidate[];
}

/** Like findCriu, but reports instead of throwing; looks at every candidate. */
export async function probeCriu(options: FindCriuOptions = {}): Promise<CriuProbe> {
  const base = { kernel: release(), privileges: privileges() };
  const list = candidates(options);
  if (list instanceof CkptError) {
    return {
      ok: false,
      found: false,
      check: 'not-run',
      reason: list.message,
      code: list.code,
      hint: list.hint,
      ...base,
      candidates: [],
    };
  }
  const seen: CriuProbeCandidate[] = [];
  let chosen: { c: Candidate; v: Verdict } | undefined;
  let firstBad: { c: Candidate; v: Verdict } | undefined;
  for (const c of list) {
    const v = await judge(c, options.cache);
    seen.push({
      path: c.path,
      source: c.source,
      version: v.versionText,
      check: v.check ? (v.check.ok ? 'passed' : 'failed') : 'not-run',
      reason: v.error?.message,
    });
    if (v.info && !chosen) chosen = { c, v };
    if (!v.info && !firstBad) firstBad = { c, v };
  }
  if (chosen) {
    return {
      ok: true,
      found: true,
      path: chosen.c.path,
      source: chosen.c.source,
      version: chosen.v.versionText,
      check: 'passed',
      checkCached: chosen.v.check?.cached ?? false,
      ...base,
      candidates: seen,
    };
  }
  const err = firstBad?.v.error ?? notFound(options);
  return {
    ok: false,
    found: firstBad !== undefined,
    path: firstBad?.c.path,
    source: firstBad?.c.source,
    version: firstBad?.v.versionText,
    check: firstBad?.v.check ? 'failed' : 'not-run',
    reason: err.message,
    code: err.code,
    hint: err.hint,
    ...base,
    candidates: seen,
  };
}
