// Who may have written a snapshot or store, checked before anything in it is used.
// A snapshot is untrusted input: its manifest names a command line, its images a
// whole process. As root, using one that another user could have written (or swapped
// while we read it) would run their code as root. The rule (docs/SECURITY.md):
// every directory and file of a snapshot is owned by the caller or by root, none is
// writable by group or others, and none is a symbolic link or a special file.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, SnapshotError } from '../errors.js';
import type { DirFd } from '../util/dirfd.js';

const S_ISVTX = 0o1000;

export const euid = (): number => process.geteuid?.() ?? 0;

/** Who made a snapshot: the one owner of its files that is not root (root if none is). */
export interface SnapshotOwner {
  uid: number;
  gid: number;
}

function writableByOthers(st: Stats): boolean {
  return (st.mode & 0o022) !== 0;
}

/**
 * A store we write into must be ours and not writable by others (a sticky directory
 * such as /tmp excepted: others cannot rename or remove what we create there).
 */
export function assertWritableStore(st: Stats, name: string): void {
  const me = euid();
  if (st.uid !== me) {
    throw new SnapshotError(ErrorCodes.SNAPSHOT_OWNER, `the store ${name} is owned by uid ${st.uid}, not by you (uid ${me})`, {
      hint: 'give a store directory of your own (--dir): another user could swap what ckpt writes there',
      details: { ownerUid: st.uid },
    });
  }
  if (writableByOthers(st) && (st.mode & S_ISVTX) === 0) {
    throw new SnapshotError(ErrorCodes.SNAPSHOT_OWNER, `the store ${name} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`, {
      hint: `make it private: chmod go-w ${name}`,
    });
  }
}

/**
 * Walks a snapshot through its descriptor (lstat: nothing is followed) and returns
 * who made it. Refuses links, special files and anything writable by others; owners
 * other than the caller and root are allowed only with `trustOwner`, and then only one.
 */
export function snapshotOwner(dir: DirFd, options: { trustOwner?: boolean } = {}): SnapshotOwner {
  const me = euid();
  const foreign = new Map<number, number>();
  const check = (st: Stats, rel: string): void => {
    if (writableByOthers(st)) {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_OWNER, `${join(dir.name, rel)} is writable by group or others: refusing the snapshot`, {
        hint: 'a snapshot must be private (ckpt writes 0700 directories and 0600 files)',
      });
    }
    if (st.uid !== me && st.uid !== 0) foreign.set(st.uid, st.gid);
  };
  check(dir.stat, '');
  const walk = (rel: string): void => {
    for (const name of readdirSync(dir.at(rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(dir.at(r));
      if (st.isSymbolicLink()) throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `${join(dir.name, r)} is a symbolic link: a snapshot holds none`);
      check(st, r);
      if (st.isDirectory()) walk(r);
      else if (!st.isFile()) throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `${join(dir.name, r)} is not a regular file`);
    }
  };
  walk('');
  if (foreign.size === 0) return { uid: dir.stat.uid, gid: dir.stat.gid };
  const [[uid, gid]] = [...foreign] as [[number, number]];
  if (foreign.size > 1 || !options.trustOwner) {
    const who = [...foreign.keys()].join(', ');
    throw new SnapshotError(ErrorCodes.SNAPSHOT_OWNER, `${dir.name} was written by uid ${who}, not by you (uid ${me}) or root`, {
      hint:
        foreign.size > 1
          ? 'its files have several owners: it cannot be trusted'
          : `restart it as that user, or give --trust-owner to ${me === 0 ? `run it as uid ${uid}` : 'use it anyway'}`,
      details: { ownerUid: uid, ownerGid: gid },
    });
  }
  return { uid, gid };
}

/**
 * Who a restart of a snapshot runs as (undefined: as the caller). Reached with a
 * foreign owner only under `trustOwner`. Root runs another user's program as that user;
 * process images (CRIU) of another user are never restored by root — they could
 * describe a process with any credentials — and neither are jobs (their coordinator
 * would run as root): those restart as their user.
 */
export function restartIdentity(owner: SnapshotOwner | undefined, what: string, kind: 'program' | 'images' | 'job'): SnapshotOwner | undefined {
  const me = euid();
  if (!owner || owner.uid === me || owner.uid === 0 || me !== 0) return undefined;
  if (kind !== 'program') {
    throw new SnapshotError(
      ErrorCodes.SNAPSHOT_OWNER,
      `${what} was written by uid ${owner.uid}: root does not restart another user's ${kind === 'images' ? 'process images' : 'job'}`,
      { hint: `restart it as that user (e.g. runuser -u "$(id -nu ${owner.uid})" -- ckpt restart …)`, details: { ownerUid: owner.uid } },
    );
  }
  return owner;
}
