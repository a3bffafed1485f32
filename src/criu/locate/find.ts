// Finding a CRIU that works on this machine: $CKPT_CRIU, then (for a user other
// than root) the copy `ckpt setup criu --for-users GROUP` made, then ckpt's private
// install (`ckpt setup criu`), then the system's. The first that qualifies
// (qualify.ts) is used.
import { existsSync, statSync } from 'node:fs';
import { CkptError, ErrorCodes } from '../../errors.js';
import { groupName } from './groups.js';
import { forUsersCriuPath, privateCriuPath, rootPrivateCriuPath, SETUP_HINT, systemCriuPaths } from './paths.js';
import { isExecutable } from './programs.js';
import { judge, type Candidate, type CriuInfo } from './qualify.js';
import { runnableByRoot } from './trusted.js';

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

/** The CRIUs to try, most preferred first; an error when CKPT_CRIU names no executable. */
export function candidates(options: FindCriuOptions): Candidate[] | CkptError {
  const env = options.env ?? process.env;
  const fromEnv = env.CKPT_CRIU;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      return new CkptError(ErrorCodes.CRIU_NOT_FOUND, `CKPT_CRIU names ${fromEnv}, which is not an executable file`, {
        hint: `fix or unset CKPT_CRIU, or ${SETUP_HINT}`,
        details: { path: fromEnv, source: 'env' },
      });
    }
    const runnable = runnableByRoot(fromEnv);
    return runnable instanceof CkptError ? runnable : [{ path: runnable, source: 'env' }];
  }
  const list: Candidate[] = [];
  // A user other than root can use only a CRIU with file capabilities: the copy
  // `ckpt setup criu --for-users GROUP` made for GROUP comes first.
  if (process.geteuid?.() !== 0 && options.privateRoot === undefined) {
    const users = options.forUsersPath ?? forUsersCriuPath();
    if (isExecutable(users)) list.push({ path: users, source: 'for-users' });
    else if (existsSync(users)) list.push(notInGroup(users));
  }
  const priv = privateCriuPath(options.privateRoot);
  if (isExecutable(priv)) list.push({ path: priv, source: 'private' });
  // root's private install (`sudo ckpt setup criu`) serves other users too: they then
  // hear that CRIU needs root, not that it is missing.
  const rootInstall = rootPrivateCriuPath();
  if (options.privateRoot === undefined && rootInstall !== priv && isExecutable(rootInstall)) list.push({ path: rootInstall, source: 'private' });
  for (const p of systemCriuPaths(env)) list.push({ path: p, source: 'system' });
  // As root, one another user could replace is never run (its error said if nothing else qualifies).
  return list.map((c) => {
    if (c.unusable) return c;
    const runnable = runnableByRoot(c.path);
    return runnable instanceof CkptError ? { ...c, unusable: runnable } : { ...c, path: runnable };
  });
}

/** The for-users copy the caller may not run: it is not in the copy's group. */
function notInGroup(users: string): Candidate {
  let group = '?';
  try {
    group = groupName(statSync(users).gid);
  } catch {
    // unreadable: said below
  }
  return {
    path: users,
    source: 'for-users',
    unusable: new CkptError(ErrorCodes.PERMISSION, `${users} is CRIU for the members of group ${group}, and you are not one of them`, {
      hint: `ask an administrator to add you to group ${group} (then log in again)`,
      details: { path: users, group },
    }),
  };
}

export function notFound(options: FindCriuOptions): CkptError {
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
