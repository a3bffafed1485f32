// Starting a snapshot's program as the user who wrote it (root, --trust-owner): with
// that user's own group, from their account — never a file's, which a setgid
// directory can give any group —, in its working directory entered as that user (not
// by root, which can pass directories the user cannot), and in a session of its own,
// away from root's terminal (TIOCSTI types into a terminal only from its session).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CkptError, ErrorCodes, SnapshotError } from '../errors.js';
import { shielded } from '../util/inherited-fds.js';

export interface Account {
  uid: number;
  gid: number;
}

/** The primary group of `uid`'s account (NSS, as getent sees it), or undefined when it has none here. */
function primaryGroup(uid: number): number | undefined {
  let line = '';
  try {
    // By its path (root's PATH may hold a directory another user can write).
    line = execFileSync(existsSync('/usr/bin/getent') ? '/usr/bin/getent' : '/bin/getent', ['passwd', String(uid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined; // no such account (exit 2), or no getent
  }
  const f = line.split('\n')[0]!.split(':');
  const gid = Number(f[3]);
  return f.length >= 7 && Number(f[2]) === uid && /^\d+$/.test(f[3] ?? '') && Number.isSafeInteger(gid) ? gid : undefined;
}

/** `uid` with its account's group; refused when it has no account here. */
export function accountOf(uid: number, what: string): Account {
  const gid = primaryGroup(uid);
  if (gid === undefined) throw new SnapshotError(ErrorCodes.SNAPSHOT_OWNER, `${what} was written by uid ${uid}, which has no account here: refusing to run its program`);
  return { uid, gid };
}

/** The group to act with as `uid`: its account's, or nogroup's (65534) for a uid with no account (a container's). */
export const accountGid = (uid: number): number => primaryGroup(uid) ?? 65534;

/** sh: enter the directory ($0), then become the command (pid and all). */
const ENTER = 'cd -- "$0" || exit 126; exec "$@"';
/** sh: can the user enter the directory (3 if not), and is the command there (4 if not)? */
const CHECK = 'cd -- "$0" 2>/dev/null || exit 3; command -v -- "$1" >/dev/null 2>&1 || exit 4';

/**
 * Checks, as the user, that the working directory can be entered and the command
 * found (a coded error before anything starts); root's own view is never consulted,
 * so the answer tells the user nothing they could not learn themselves.
 */
export function checkAs(a: Account, cwd: string, command: string, env: Record<string, string>): void {
  // None of root's inherited descriptors (util/inherited-fds.ts).
  const r = shielded(['ignore', 'ignore', 'ignore'], (stdio) => spawnSync('/bin/sh', ['-c', CHECK, cwd, command], { cwd: '/', env, uid: a.uid, gid: a.gid, stdio }));
  if (r.status === 3) {
    throw new CkptError(ErrorCodes.CWD_MISSING, `the working directory the program ran in, ${cwd}, does not exist here or uid ${a.uid} cannot enter it`, {
      hint: 'create it (or mount what held it) and restart again',
    });
  }
  if (r.status === 4) throw new CkptError(ErrorCodes.COMMAND_NOT_FOUND, `cannot start ${command}: no such program here for uid ${a.uid}`);
  if (r.status !== 0) throw new CkptError(ErrorCodes.PERMISSION, `cannot start ${command} as uid ${a.uid}: ${r.error?.message ?? `the check ended with status ${r.status}`}`);
}

/** What to spawn (as the user, from `/`) to run the command in `cwd`. */
export function enterAndRun(cwd: string, command: string, args: string[]): [string, string[]] {
  return ['/bin/sh', ['-c', ENTER, cwd, command, ...args]];
}
