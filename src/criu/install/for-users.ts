// `ckpt setup criu --for-users GROUP` (root): a copy of CRIU with file
// capabilities, owned root:GROUP and mode 0750, so that GROUP's members
// checkpoint and restore their own processes through CRIU's unprivileged mode
// while nobody else can run it.
import { chmodSync, chownSync, copyFileSync, mkdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CkptError, ErrorCodes, errnoCode } from '../../errors.js';
import { fileCapabilities, missingUserCaps, USER_CRIU_SETCAP } from '../locate/caps.js';
import { groupId } from '../locate/groups.js';
import { forUsersCriuPath } from '../locate/paths.js';
import { which } from '../locate/programs.js';
import { installError } from './errors.js';
import { installCriu, type InstallCriuOptions } from './install-criu.js';
import { osRelease } from './plan.js';
import { ensureProgram, mustRun } from './tools.js';

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

/** setcap, installed (package libcap2-bin) when missing and apt-get is there. */
function ensureSetcap(progress: (m: string) => void): Promise<string> {
  return ensureProgram(
    {
      name: 'setcap',
      pkg: 'libcap2-bin',
      cannotInstall: () =>
        which('apt-get')
          ? undefined
          : installError('setcap is not installed', {
              hint: `install it (Debian/Ubuntu: libcap2-bin; RHEL-family: libcap), then rerun \`ckpt setup criu --for-users\` (${osRelease().ID ?? 'this system'})`,
            }),
    },
    progress,
  );
}

/**
 * Installs (or finds) CRIU as for root, then puts a copy of it at
 * forUsersCriuPath() with the file capabilities cap_checkpoint_restore and
 * cap_setpcap. The copy is written under a temporary name and renamed into place
 * once complete.
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
  const setcap = await ensureSetcap(progress);
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
