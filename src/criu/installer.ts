// `ckpt setup criu`: installs a CRIU that works on this kernel into a private
// prefix, without touching the system's packages.
//
// Debian 12's CRIU (3.17) fails `criu check` on recent kernels and trixie's 4.1
// cannot dump TCP sockets on Linux ≥ 6.16; CRIU ≥ 4.2 works. Recipe: a private
// apt configuration naming sid (for criu, libcompel1, libnet9, libnl-3-200) and
// trixie (for everything else, e.g. glibc ≥ 2.38) on the mirror apt already uses,
// `apt-get install -d` with an empty dpkg status (so every dependency is fetched),
// `dpkg -x` of all the .debs into a versioned directory, then patchelf the criu
// binary onto the private loader and libraries (never an ld.so wrapper script:
// restores of programs using the same loader fail with PR_SET_MM_MAP -16).
// Finally `current` is switched atomically to the new directory. Ubuntu takes the
// same route on its own archive (the `devel` series, main and universe); other
// systems get an error that says what ckpt needs instead (installPlan). With
// --for-users GROUP, a copy with file capabilities is made for GROUP's members.
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  realpathSync,
  statSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { arch } from 'node:os';
import { basename, delimiter, join, resolve } from 'node:path';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { isAlive } from '../util/signals.js';
import type { RunResult } from '../util/spawn.js';
import {
  type CriuInfo,
  type CriuSource,
  defaultPrivateRoot,
  fileCapabilities,
  findCriu,
  forUsersCriuPath,
  missingUserCaps,
  USER_CRIU_SETCAP,
  formatVersion,
  privateCriuPath,
  qualifyCriu,
  runTool,
  systemCriuPaths,
} from './locate.js';

export interface InstallCriuOptions {
  /** Install root (default `toolsDir()/criu`); CRIU ends up at `<prefix>/current/usr/sbin/criu`. */
  prefix?: string;
  /** Called with one short line per step. */
  onProgress?: (message: string) => void;
  /** Install even if a qualifying CRIU is already there. */
  force?: boolean;
}

export interface InstallCriuResult {
  /** What was done: nothing (a private or system CRIU qualifies) or a fresh install. */
  action: 'installed' | 'already-installed' | 'using-system' | 'using-env';
  installed: boolean;
  path: string;
  version: string;
  source: CriuSource;
  /** The install root. */
  prefix: string;
  /** The versioned directory `current` points at (private installs). */
  dir?: string;
  /** The .deb files unpacked (fresh installs). */
  packages?: string[];
  message: string;
}

/** Packages taken from unstable: CRIU itself and the libraries that must match it. */
export const SID_PACKAGES = ['criu', 'libcompel1', 'libnet9', 'libnl-3-200'];
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

function installError(message: string, options: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {}): CkptError {
  return new CkptError(ErrorCodes.CRIU_INSTALL, message, options);
}

function which(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of [...dirs, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

// ---- apt's configured Debian mirror ----

export interface AptSource {
  uri: string;
  suites: string[];
  signedBy?: string;
  file: string;
}

/** The `deb` entries of apt's configuration (classic one-line and deb822 formats). */
export function parseAptSources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  if (file.endsWith('.sources')) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields: Record<string, string> = {};
      let last: string | undefined;
      for (const raw of stanza.split('\n')) {
        if (raw.startsWith('#')) continue;
        if (/^\s/.test(raw) && last) {
          fields[last] += ` ${raw.trim()}`;
          continue;
        }
        const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
        if (m?.[1]) {
          last = m[1].toLowerCase();
          fields[last] = m[2] ?? '';
        }
      }
      if (!(fields.types ?? '').split(/\s+/).includes('deb')) continue;
      if (/^(no|false|0)$/i.test(fields.enabled ?? 'yes')) continue;
      const suites = (fields.suites ?? '').split(/\s+/).filter(Boolean);
      const signed = fields['signed-by']?.trim();
      for (const uri of (fields.uris ?? '').split(/\s+/).filter(Boolean)) {
        out.push({ uri, suites, file, ...(signed && signed.startsWith('/') && !signed.includes(' ') ? { signedBy: signed } : {}) });
      }
    }
    return out;
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (!m?.[2] || !m[3]) continue;
    const signed = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
    out.push({ uri: m[2], suites: [m[3]], file, ...(signed ? { signedBy: signed } : {}) });
  }
  return out;
}

/** Every `deb` source apt is configured with. */
export function aptSources(etc = '/etc/apt'): AptSource[] {
  const files: string[] = [];
  if (existsSync(join(etc, 'sources.list'))) files.push(join(etc, 'sources.list'));
  try {
    for (const name of readdirSync(join(etc, 'sources.list.d')).sort()) {
      if (name.endsWith('.list') || name.endsWith('.sources')) files.push(join(etc, 'sources.list.d', name));
    }
  } catch {
    // no directory
  }
  const out: AptSource[] = [];
  for (const f of files) {
    try {
      out.push(...parseAptSources(readFileSync(f, 'utf8'), f));
    } catch {
      // unreadable: skip
    }
  }
  return out;
}

/** The main Debian archive among apt's sources: a plain release suite (no -security/-updates), an http(s) URI. */
export function debianMirror(sources: AptSource[] = aptSources()): AptSource {
  const plain = (s: string): boolean => /^[a-z]+$/.test(s) && s !== 'experimental';
  const usable = sources.filter((s) => /^https?:\/\//.test(s.uri) && !/-security\/?$/.test(s.uri));
  const main = usable.find((s) => s.suites.some(plain)) ?? usable.find((s) => s.suites.some((x) => !x.includes('security')));
  if (!main) {
    throw installError('found no Debian archive among apt sources (no http(s) `deb` entry with a release suite)', {
      hint: 'configure a Debian mirror in /etc/apt/sources.list.d/, or install CRIU ≥ 4.2 by hand and set CKPT_CRIU',
    });
  }
  return { ...main, uri: main.uri.replace(/\/+$/, '') };
}

// ---- small helpers ----

function osRelease(): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m?.[1]) out[m[1]] = (m[2] ?? '').replace(/^"(.*)"$/, '$1');
    }
    return out;
  } catch {
    return {};
  }
}

function manualHint(os: Record<string, string> = {}): string {
  const like = `${os.ID ?? ''} ${os.ID_LIKE ?? ''}`;
  const rhel = /\b(rhel|fedora|centos|rocky|almalinux)\b/.test(like);
  const how = rhel
    ? '`dnf install criu` when its `criu --version` is ≥ 4.2, else build CRIU ≥ 4.2 from source (README: RHEL-family)'
    : 'your distribution\'s package when it is ≥ 4.2, else built from source';
  return `ckpt needs a CRIU ≥ 4.2 that passes \`criu check\` (${how}); then set CKPT_CRIU=/path/to/criu`;
}

// ---- which recipe fits this system ----

export interface InstallPlan {
  distro: 'debian' | 'ubuntu';
  /** The archive apt already uses (its URI, signed-by). */
  mirror: AptSource;
  /** Suites fetched from it, and the components. */
  suites: string[];
  components: string[];
  /** Suite whose CRIU packages are pinned above the others (Debian: sid), if any. */
  pinSuite?: string;
  keyring: string;
}

export const UBUNTU_KEYRING = '/usr/share/keyrings/ubuntu-archive-keyring.gpg';

/** The Ubuntu archive among apt's sources: archive/ports (any mirror), not the security pocket. */
export function ubuntuMirror(sources: AptSource[] = aptSources()): AptSource {
  const usable = sources.filter((s) => /^https?:\/\//.test(s.uri) && !/security\.ubuntu\.com/.test(s.uri));
  const main =
    usable.find((s) => /\/ubuntu(-ports)?\/?$/.test(s.uri) && s.suites.some((x) => /^[a-z]+$/.test(x))) ??
    usable.find((s) => s.suites.some((x) => /^[a-z]+$/.test(x)));
  if (!main) {
    throw installError('found no Ubuntu archive among apt sources (no http(s) `deb` entry with a release suite)', {
      hint: manualHint({ ID: 'ubuntu' }),
    });
  }
  return { ...main, uri: main.uri.replace(/\/+$/, '') };
}

/** Debian or Ubuntu (or a derivative naming it in ID_LIKE) with apt-get and dpkg; else CRIU_INSTALL, saying what to do. */
export function supportedDistro(os: Record<string, string>, tools: { apt: boolean }): 'debian' | 'ubuntu' {
  const name = os.PRETTY_NAME ?? os.ID ?? 'this system';
  const ubuntu = os.ID === 'ubuntu' || / ubuntu /.test(` ${os.ID_LIKE ?? ''} `);
  if (!tools.apt || (os.ID !== 'debian' && !ubuntu)) {
    throw installError(`cannot install CRIU automatically on ${name}: ckpt's recipe needs Debian or Ubuntu (apt-get and dpkg)`, {
      hint: manualHint(os),
      details: { os: os.ID, idLike: os.ID_LIKE },
    });
  }
  return ubuntu ? 'ubuntu' : 'debian';
}

/**
 * How CRIU can be installed here: Debian takes CRIU from sid and the rest from
 * trixie; Ubuntu takes both from its development series (`devel`: Ubuntu syncs
 * CRIU from Debian), on the archive apt already uses. Any other system: a
 * CRIU_INSTALL error that says exactly what ckpt needs instead.
 */
export function installPlan(os: Record<string, string>, sources: () => AptSource[], tools: { apt: boolean }): InstallPlan {
  if (supportedDistro(os, tools) === 'ubuntu') {
    return { distro: 'ubuntu', mirror: ubuntuMirror(sources()), suites: ['devel'], components: ['main', 'universe'], keyring: UBUNTU_KEYRING };
  }
  return { distro: 'debian', mirror: debianMirror(sources()), suites: ['sid', 'trixie'], components: ['main'], pinSuite: 'sid', keyring: KEYRING };
}

function aptReason(r: RunResult): string {
  const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const e = lines.filter((l) => /^E:/.test(l));
  const pick = e.length ? e.slice(0, 2).join(' ') : (lines.at(-1) ?? `exit code ${r.code ?? r.signal}`);
  return pick.replace(/\s+/g, ' ');
}

async function mustRun(what: string, command: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  let r: RunResult;
  try {
    r = await runTool(command, args, { timeoutMs, env: { ...process.env, LC_ALL: 'C', ...env } });
  } catch (err) {
    throw installError(`${what}: cannot run ${command}: ${errnoCode(err) ?? String(err)}`, { cause: err });
  }
  if (r.code !== 0) {
    throw installError(`${what} failed: ${aptReason(r)}`, { details: { command: [command, ...args].join(' '), exit: r.code ?? r.signal } });
  }
  return r;
}

/** The Debian multiarch triplet (x86_64-linux-gnu …). */
async function multiarch(): Promise<string> {
  try {
    const r = await runTool('dpkg-architecture', ['-qDEB_HOST_MULTIARCH'], { timeoutMs: 10_000 });
    const t = r.stdout.trim();
    if (r.code === 0 && t) return t;
  } catch {
    // dpkg-dev absent: fall through
  }
  let m = '';
  try {
    m = (await runTool('uname', ['-m'], { timeoutMs: 5_000 })).stdout.trim();
  } catch {
    m = arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch();
  }
  const map: Record<string, string> = {
    x86_64: 'x86_64-linux-gnu',
    aarch64: 'aarch64-linux-gnu',
    ppc64le: 'powerpc64le-linux-gnu',
    s390x: 's390x-linux-gnu',
    riscv64: 'riscv64-linux-gnu',
  };
  const t = map[m];
  if (!t) throw installError(`unsupported machine architecture '${m}'`, { hint: manualHint() });
  return t;
}

async function ensurePatchelf(progress: (m: string) => void): Promise<string> {
  const found = which('patchelf');
  if (found) return found;
  if (process.geteuid?.() !== 0) {
    throw installError('patchelf is not installed and installing it needs root', { hint: 'apt-get install patchelf, then rerun `ckpt setup criu`' });
  }
  progress('installing patchelf (Debian package)');
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', '-qq', '--no-install-recommends', 'patchelf'];
  const first = await runTool('apt-get', args, { timeoutMs: 600_000, env: { ...process.env, ...env } }).catch(() => undefined);
  if (first?.code !== 0) {
    await mustRun('apt-get update', 'apt-get', ['update', '-qq'], 600_000, env);
    await mustRun('apt-get install patchelf', 'apt-get', args, 600_000, env);
  }
  const p = which('patchelf');
  if (!p) throw installError('patchelf is still missing after installing it');
  return p;
}

// ---- the install lock ----

/** Takes `<root>/.install.lock` (pid inside), waiting while a live holder has it; returns the release function. */
async function acquireLock(root: string): Promise<() => void> {
  const lock = join(root, '.install.lock');
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(lock, 'utf8').trim() === String(process.pid)) unlinkSync(lock);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw installError(`cannot create ${lock}: ${errnoCode(err) ?? String(err)}`, { cause: err });
    }
    let text: string;
    try {
      text = readFileSync(lock, 'utf8').trim();
    } catch {
      continue; // removed meanwhile
    }
    const holder = Number(text);
    if (!/^\d+$/.test(text) || holder <= 1 || !isAlive(holder)) {
      // Stale (its holder died). A lock file being written holds no pid yet: give it a moment first.
      await new Promise((r) => setTimeout(r, 200));
      try {
        if (readFileSync(lock, 'utf8').trim() === text) unlinkSync(lock);
      } catch {
        // someone else removed it
      }
      continue;
    }
    if (Date.now() > deadline) throw installError(`another \`ckpt setup criu\` (pid ${holder}) holds ${lock}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// ---- installation ----

function currentTarget(root: string): string | undefined {
  try {
    return resolve(root, readlinkSync(join(root, 'current')));
  } catch {
    return undefined;
  }
}

/** Points `<root>/current` at dir atomically (a new symlink renamed over the old). */
function switchCurrent(root: string, dir: string): void {
  const tmp = join(root, `.current-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(basename(dir), tmp);
  renameSync(tmp, join(root, 'current'));
}

async function existingQualifying(root: string): Promise<{ info: CriuInfo; source: 'private' | 'system' } | undefined> {
  const priv = privateCriuPath(root);
  if (existsSync(priv)) {
    try {
      return { info: await qualifyCriu(priv, 'private'), source: 'private' };
    } catch {
      // broken or old: reinstall
    }
  }
  for (const p of systemCriuPaths()) {
    if (p.startsWith(`${root}/`)) continue;
    try {
      return { info: await qualifyCriu(p, 'system'), source: 'system' };
    } catch {
      // not good enough
    }
  }
  return undefined;
}

function resultFor(found: { info: CriuInfo; source: 'private' | 'system' }, root: string): InstallCriuResult {
  const v = formatVersion(found.info.version);
  if (found.source === 'private') {
    return {
      action: 'already-installed',
      installed: false,
      path: found.info.path,
      version: v,
      source: 'private',
      prefix: root,
      dir: currentTarget(root),
      message: `CRIU ${v} is already installed at ${found.info.path}; nothing to do`,
    };
  }
  return {
    action: 'using-system',
    installed: false,
    path: found.info.path,
    version: v,
    source: 'system',
    prefix: root,
    message: `the system's CRIU ${v} at ${found.info.path} works; nothing installed`,
  };
}

/**
 * Makes sure a working CRIU ≥ 4.2 is available, installing one into
 * `<prefix>/<version>` (and `<prefix>/current`) when neither the private nor
 * the system's CRIU qualifies. Throws CkptError CRIU_INSTALL.
 */
export async function installCriu(options: InstallCriuOptions = {}): Promise<InstallCriuResult> {
  const progress = options.onProgress ?? (() => {});
  const root = resolve(options.prefix ?? defaultPrivateRoot());

  progress('looking for a working CRIU');
  const fromEnv = process.env.CKPT_CRIU;
  if (fromEnv) {
    // CKPT_CRIU overrides everything ckpt would install: check it instead.
    const info = await findCriu({ cache: !options.force }).catch((err: unknown) => {
      if (err instanceof CkptError) {
        throw new CkptError(err.code, err.message, { details: err.details, hint: 'fix CKPT_CRIU, or unset it and rerun `ckpt setup criu`', cause: err });
      }
      throw err;
    });
    const v = formatVersion(info.version);
    return {
      action: 'using-env',
      installed: false,
      path: info.path,
      version: v,
      source: 'env',
      prefix: root,
      message: `CKPT_CRIU names CRIU ${v} at ${info.path}, which works; nothing installed`,
    };
  }
  if (!options.force) {
    const found = await existingQualifying(root);
    if (found) return resultFor(found, root);
  }

  const os = osRelease();
  const tools = { apt: !!which('apt-get') && !!which('dpkg') };
  supportedDistro(os, tools);

  try {
    mkdirSync(root, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw installError(`cannot create ${root}: ${errnoCode(err) ?? String(err)}`, {
      hint: 'run as root, or pass --prefix DIR (or set CKPT_HOME) to a writable directory',
      cause: err,
    });
  }
  const unlock = await acquireLock(root);
  let work: string | undefined;
  try {
    // Only the lock holder makes temp dirs: any left here are from an interrupted run.
    for (const name of readdirSync(root)) {
      if (name.startsWith('.tmp-') || name.startsWith('.current-')) rmSync(join(root, name), { recursive: true, force: true });
    }
    // Someone may have finished an install while we waited for the lock.
    if (!options.force) {
      const found = await existingQualifying(root);
      if (found) return resultFor(found, root);
    }

    const plan = installPlan(os, aptSources, tools);
    const mirror = plan.mirror;
    const patchelf = await ensurePatchelf(progress);
    const triplet = await multiarch();

    work = mkdtempSync(join(root, '.tmp-'));
    const etc = join(work, 'etc');
    for (const d of [etc, join(work, 'lists', 'partial'), join(work, 'cache', 'archives', 'partial')]) mkdirSync(d, { recursive: true });
    const signedBy = existsSync(plan.keyring) ? plan.keyring : mirror.signedBy;
    const opt = signedBy ? `[signed-by=${signedBy}] ` : '';
    writeFileSync(join(etc, 'sources.list'), plan.suites.map((s) => `deb ${opt}${mirror.uri} ${s} ${plan.components.join(' ')}\n`).join(''));
    writeFileSync(
      join(etc, 'preferences'),
      plan.pinSuite
        ? [
            `Package: *\nPin: release n=${plan.pinSuite}\nPin-Priority: 100\n`,
            `Package: ${SID_PACKAGES.join(' ')}\nPin: release n=${plan.pinSuite}\nPin-Priority: 990\n`,
          ].join('\n')
        : '',
    );
    const aptOpts = [
      `Dir::Etc::SourceList=${join(etc, 'sources.list')}`,
      'Dir::Etc::SourceParts=/dev/null',
      `Dir::Etc::Preferences=${join(etc, 'preferences')}`,
      'Dir::Etc::PreferencesParts=/dev/null',
      `Dir::State::Lists=${join(work, 'lists')}`,
      `Dir::Cache=${join(work, 'cache')}`,
      'Dir::State::Status=/dev/null',
      'APT::Install-Recommends=false',
      'Debug::NoLocking=1',
    ].flatMap((o) => ['-o', o]);

    progress(`fetching package lists (${plan.suites.join(', ')}) from ${mirror.uri}`);
    await mustRun(`apt-get update (private ${plan.suites.join('/')} lists)`, 'apt-get', [...aptOpts, 'update', '-qq'], 900_000);
    progress('downloading criu and its libraries');
    await mustRun('apt-get download of criu', 'apt-get', [...aptOpts, 'install', '-y', '-d', '-qq', 'criu'], 1_800_000, {
      DEBIAN_FRONTEND: 'noninteractive',
    });

    const archives = join(work, 'cache', 'archives');
    const debs = readdirSync(archives).filter((f) => f.endsWith('.deb')).sort();
    const criuDeb = debs.find((f) => f.startsWith('criu_'));
    if (!criuDeb) throw installError('apt-get downloaded no criu package', { details: { packages: debs } });
    const debVersion = decodeURIComponent(criuDeb.split('_')[1] ?? 'unknown');
    const base = `criu-${debVersion.replace(/[^A-Za-z0-9.+~-]/g, '_')}`;
    let dir = join(root, base);
    if (existsSync(dir)) {
      if (currentTarget(root) === dir) dir = join(root, `${base}.${Date.now()}`);
      else rmSync(dir, { recursive: true, force: true }); // a leftover that did not qualify
    }

    progress(`unpacking ${debs.length} packages`);
    const staging = join(work, 'root');
    mkdirSync(staging);
    for (const deb of debs) await mustRun(`dpkg -x ${deb}`, 'dpkg', ['-x', join(archives, deb), staging], 300_000);

    // The binary is patched for its final place, then the tree moved there.
    const binRel = join('usr', 'sbin', 'criu');
    const interp = (await mustRun('patchelf --print-interpreter', patchelf, ['--print-interpreter', join(staging, binRel)], 60_000)).stdout.trim();
    const libDirsRel = [join('usr', 'lib', triplet), join('lib', triplet)].filter((d) => existsSync(join(staging, d)));
    const loaderRel = [...libDirsRel, join('usr', 'lib64'), 'lib64']
      .map((d) => join(d, basename(interp)))
      .find((p) => existsSync(join(staging, p)));
    if (!loaderRel || libDirsRel.length === 0) {
      throw installError(`the downloaded packages hold no ${basename(interp)} for ${triplet}`, { details: { packages: debs } });
    }
    progress('patching criu onto its private loader and libraries');
    await mustRun('patchelf', patchelf, [
      '--set-interpreter',
      join(dir, loaderRel),
      '--force-rpath',
      '--set-rpath',
      libDirsRel.map((d) => join(dir, d)).join(':'),
      join(staging, binRel),
    ], 60_000);
    writeFileSync(
      join(staging, 'ckpt-install.json'),
      `${JSON.stringify({ criu: debVersion, distro: plan.distro, suites: plan.suites, packages: debs, installedAt: new Date().toISOString() }, null, 2)}\n`,
    );
    renameSync(staging, dir);

    progress('checking the new CRIU (criu check)');
    let info: CriuInfo;
    try {
      info = await qualifyCriu(join(dir, binRel), 'private', { cache: false });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      const why = err instanceof Error ? err.message : String(err);
      throw installError(`the installed CRIU does not work: ${why}`, { cause: err, hint: manualHint(os) });
    }

    const previous = currentTarget(root);
    switchCurrent(root, dir);
    // Older versions are no longer referenced (a running criu keeps its open files).
    for (const name of readdirSync(root)) {
      const p = join(root, name);
      if (name.startsWith('criu-') && p !== dir && p !== previous) rmSync(p, { recursive: true, force: true });
    }
    if (previous && previous !== dir && previous.startsWith(`${root}/criu-`)) rmSync(previous, { recursive: true, force: true });

    const path = privateCriuPath(root);
    const v = formatVersion(info.version);
    return {
      action: 'installed',
      installed: true,
      path,
      version: v,
      source: 'private',
      prefix: root,
      dir,
      packages: debs,
      message: `installed CRIU ${v} at ${path}${existsSync(forUsersCriuPath()) && root === resolve(defaultPrivateRoot()) ? `; the copy for users (${forUsersCriuPath()}) is of the previous one: rerun \`ckpt setup criu --for-users GROUP\`` : ''}`,
    };
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
    unlock();
  }
}

// ---- a CRIU for the users of a group (non-root checkpoints) ----

export interface ForUsersResult {
  path: string;
  group: string;
  gid: number;
  /** The CRIU it is a copy of. */
  from: string;
  version: string;
  capabilities: string;
  message: string;
}

/** A group's gid from /etc/group (`getent` when that has no entry: LDAP, sssd). */
async function groupId(group: string): Promise<number | undefined> {
  if (/^\d+$/.test(group)) return Number(group);
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name === group && id !== undefined && /^\d+$/.test(id)) return Number(id);
    }
  } catch {
    // fall through to getent
  }
  try {
    const r = await runTool('getent', ['group', group], { timeoutMs: 10_000 });
    const id = r.stdout.split(':')[2];
    if (r.code === 0 && id && /^\d+$/.test(id)) return Number(id);
  } catch {
    // no getent
  }
  return undefined;
}

async function ensureSetcap(progress: (m: string) => void, os: Record<string, string>): Promise<string> {
  const found = which('setcap');
  if (found) return found;
  if (!which('apt-get')) {
    throw installError('setcap is not installed', { hint: `install it (Debian/Ubuntu: libcap2-bin; RHEL-family: libcap), then rerun \`ckpt setup criu --for-users\` (${os.ID ?? 'this system'})` });
  }
  progress('installing setcap (package libcap2-bin)');
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', '-qq', '--no-install-recommends', 'libcap2-bin'];
  const first = await runTool('apt-get', args, { timeoutMs: 600_000, env: { ...process.env, ...env } }).catch(() => undefined);
  if (first?.code !== 0) {
    await mustRun('apt-get update', 'apt-get', ['update', '-qq'], 600_000, env);
    await mustRun('apt-get install libcap2-bin', 'apt-get', args, 600_000, env);
  }
  const p = which('setcap');
  if (!p) throw installError('setcap is still missing after installing libcap2-bin');
  return p;
}

/** Every directory from / down to `path`'s own must let others through (o+x), or a user's exec fails. */
function assertTraversable(path: string): void {
  let dir = resolve(path, '..');
  for (;;) {
    const st = statSync(dir);
    if ((st.mode & 0o001) === 0) {
      throw installError(`${dir} is closed to other users (mode ${(st.mode & 0o777).toString(8)}): they could not run CRIU below it`, {
        hint: `chmod o+x ${dir}, or install CRIU under another --prefix`,
      });
    }
    if (dir === '/') return;
    dir = resolve(dir, '..');
  }
}

/**
 * `ckpt setup criu --for-users GROUP` (root): installs (or finds) CRIU as for root,
 * then puts a copy of it at forUsersCriuPath(), owned root:GROUP, mode 0750, with
 * the file capabilities cap_checkpoint_restore and cap_setpcap. Members of GROUP
 * then checkpoint and restore their own processes through CRIU's unprivileged
 * mode; nobody else can run it. The copy is written under a temporary name and
 * renamed into place once complete.
 */
export async function installForUsers(group: string, options: InstallCriuOptions = {}): Promise<ForUsersResult> {
  const progress = options.onProgress ?? (() => {});
  if (process.geteuid?.() !== 0) {
    throw new CkptError(ErrorCodes.PERMISSION, '`ckpt setup criu --for-users` gives a binary file capabilities: run it as root', {
      hint: 'sudo ckpt setup criu --for-users GROUP',
    });
  }
  const gid = await groupId(group);
  if (gid === undefined) throw new CkptError(ErrorCodes.USAGE, `no group named '${group}'`, { hint: `create it (groupadd ${group}) and add the users who may checkpoint` });
  const base = await installCriu(options);
  const from = realpathSync(base.path);
  const os = osRelease();
  const setcap = await ensureSetcap(progress, os);
  const target = forUsersCriuPath();
  const dir = resolve(target, '..');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  assertTraversable(from);
  assertTraversable(target);
  progress(`copying ${from} for group ${group} (root:${group}, 0750, ${USER_CRIU_SETCAP})`);
  const tmp = join(dir, `.criu-${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  try {
    copyFileSync(from, tmp);
    chownSync(tmp, 0, gid);
    chmodSync(tmp, 0o750);
    await mustRun('setcap', setcap, [USER_CRIU_SETCAP, tmp], 60_000);
    const caps = await fileCapabilities(tmp);
    const missing = caps ? missingUserCaps(caps) : [];
    if (missing.length) throw installError(`setcap left ${tmp} without ${missing.join(', ')} (the file system may not keep file capabilities)`, { hint: 'put the private prefix on a file system with extended attributes (ext4, xfs)' });
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err instanceof CkptError) throw err;
    throw installError(`cannot install ${target}: ${errnoCode(err) ?? String(err)}`, { cause: err });
  }
  return {
    path: target,
    group,
    gid,
    from,
    version: base.version,
    capabilities: USER_CRIU_SETCAP,
    message: `installed CRIU ${base.version} for the members of group ${group} at ${target} (${USER_CRIU_SETCAP}); they checkpoint their own processes with it`,
  };
}
