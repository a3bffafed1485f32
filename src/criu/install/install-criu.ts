// `ckpt setup criu`: installs a CRIU that works on this kernel into a private
// prefix, without touching the system's packages. Recipe (plan.ts): a private apt
// configuration on the mirror apt already uses downloads criu and all it depends
// on (fetch.ts); `dpkg -x` of all the .debs into a versioned directory, then
// patchelf of the criu binary onto the private loader and libraries (unpack.ts);
// finally `current` is switched atomically to the new directory (versions.ts).
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CkptError, errnoCode } from '../../errors.js';
import { findCriu } from '../locate/find.js';
import { defaultPrivateRoot, forUsersCriuPath, privateCriuPath, systemCriuPaths } from '../locate/paths.js';
import { which } from '../locate/programs.js';
import { qualifyCriu, type CriuInfo, type CriuSource } from '../locate/qualify.js';
import { formatVersion } from '../locate/version.js';
import { aptSources } from './apt-sources.js';
import { installError, manualHint } from './errors.js';
import { fetchCriuPackages } from './fetch.js';
import { acquireInstallLock } from './lock.js';
import { installPlan, osRelease, supportedDistro } from './plan.js';
import { ensureProgram, multiarch } from './tools.js';
import { CRIU_BIN, unpackAndPatch } from './unpack.js';
import { currentTarget, pruneVersions, removeLeftovers, switchCurrent, versionDir } from './versions.js';

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

type Existing = { info: CriuInfo; source: 'private' | 'system' };

/** A private or system CRIU that already qualifies, if any. */
async function existingQualifying(root: string): Promise<Existing | undefined> {
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

function resultFor(found: Existing, root: string): InstallCriuResult {
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

/** CKPT_CRIU overrides everything ckpt would install: check it instead. */
async function fromEnv(root: string, force: boolean | undefined): Promise<InstallCriuResult> {
  const info = await findCriu({ cache: !force }).catch((err: unknown) => {
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

/**
 * Makes sure a working CRIU ≥ 4.2 is available, installing one into
 * `<prefix>/<version>` (and `<prefix>/current`) when neither the private nor
 * the system's CRIU qualifies. Throws CkptError CRIU_INSTALL.
 */
export async function installCriu(options: InstallCriuOptions = {}): Promise<InstallCriuResult> {
  const progress = options.onProgress ?? (() => {});
  const root = resolve(options.prefix ?? defaultPrivateRoot());

  progress('looking for a working CRIU');
  if (process.env.CKPT_CRIU) return fromEnv(root, options.force);
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
  const unlock = await acquireInstallLock(root);
  let work: string | undefined;
  try {
    // Only the lock holder makes temp dirs: any left here are from an interrupted run.
    removeLeftovers(root);
    // Someone may have finished an install while we waited for the lock.
    if (!options.force) {
      const found = await existingQualifying(root);
      if (found) return resultFor(found, root);
    }

    const plan = installPlan(os, aptSources, tools);
    const patchelf = await ensureProgram(
      {
        name: 'patchelf',
        pkg: 'patchelf',
        cannotInstall: () =>
          process.geteuid?.() !== 0
            ? installError('patchelf is not installed and installing it needs root', { hint: 'apt-get install patchelf, then rerun `ckpt setup criu`' })
            : undefined,
      },
      progress,
    );
    const triplet = await multiarch();

    work = mkdtempSync(join(root, '.tmp-'));
    const fetched = await fetchCriuPackages(plan, work, progress);
    const dir = versionDir(root, fetched.criuVersion);
    // The binary is patched for its final place, then the tree moved there.
    const staging = join(work, 'root');
    await unpackAndPatch({ archives: fetched.archives, debs: fetched.debs, staging, finalDir: dir, triplet, patchelf }, progress);
    writeFileSync(
      join(staging, 'ckpt-install.json'),
      `${JSON.stringify({ criu: fetched.criuVersion, distro: plan.distro, suites: plan.suites, packages: fetched.debs, installedAt: new Date().toISOString() }, null, 2)}\n`,
    );
    renameSync(staging, dir);

    progress('checking the new CRIU (criu check)');
    let info: CriuInfo;
    try {
      info = await qualifyCriu(join(dir, CRIU_BIN), 'private', { cache: false });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      const why = err instanceof Error ? err.message : String(err);
      throw installError(`the installed CRIU does not work: ${why}`, { cause: err, hint: manualHint(os) });
    }

    const previous = currentTarget(root);
    switchCurrent(root, dir);
    pruneVersions(root, dir, previous);

    const path = privateCriuPath(root);
    const v = formatVersion(info.version);
    const staleCopy = existsSync(forUsersCriuPath()) && root === resolve(defaultPrivateRoot());
    return {
      action: 'installed',
      installed: true,
      path,
      version: v,
      source: 'private',
      prefix: root,
      dir,
      packages: fetched.debs,
      message: `installed CRIU ${v} at ${path}${staleCopy ? `; the copy for users (${forUsersCriuPath()}) is of the previous one: rerun \`ckpt setup criu --for-users GROUP\`` : ''}`,
    };
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
    unlock();
  }
}
