// Where CRIU binaries live: ckpt's private install, the copy made for a group's
// users, and the system's.
import { join } from 'node:path';
import { ROOT_TOOLS_DIR, toolsDir } from '../../util/paths.js';
import { findPrograms, SBIN_DIRS } from './programs.js';

export const SETUP_HINT = 'run `ckpt setup criu`';

/** Where `ckpt setup criu` installs by default: `<toolsDir>/criu`. */
export function defaultPrivateRoot(): string {
  return join(toolsDir(), 'criu');
}

/** The criu binary inside a private install root. */
export function privateCriuPath(root = defaultPrivateRoot()): string {
  return join(root, 'current', 'usr', 'sbin', 'criu');
}

/** root's private install (`sudo ckpt setup criu`), which serves other users too. */
export function rootPrivateCriuPath(): string {
  return privateCriuPath(join(ROOT_TOOLS_DIR, 'criu'));
}

/** Where `ckpt setup criu --for-users GROUP` puts the copy of CRIU users run. */
export function forUsersCriuPath(): string {
  return join(ROOT_TOOLS_DIR, 'criu', 'for-users', 'criu');
}

/** criu binaries on PATH and in the usual sbin directories, duplicates removed. */
export function systemCriuPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  return findPrograms('criu', env, SBIN_DIRS);
}
