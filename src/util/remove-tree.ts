// Removing a directory tree that may sit where another user could act (a store they
// prepared, /tmp): each directory opened through its parent's descriptor without
// following a link, a link removed and never followed. Node's rmSync({ recursive })
// walks by path: a directory swapped for a link while it runs is followed.
import { lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from '../errors.js';
import { DirFd } from './dirfd.js';

/**
 * Removes `name` inside `parent` and all below it. Returns the bytes of the files
 * removed (counted only, with `dryRun`).
 */
export function removeTree(parent: DirFd, name: string, dryRun = false): number {
  const path = parent.at(name);
  let st;
  try {
    st = lstatSync(path);
    if (!st.isDirectory()) {
      if (!dryRun) unlinkSync(path);
      return st.isFile() ? st.size : 0;
    }
  } catch (err) {
    // Gone meanwhile (a socket its server unlinked): nothing left to remove.
    if (errnoCode(err) === 'ENOENT') return 0;
    throw err;
  }
  let dir: DirFd;
  try {
    dir = DirFd.open(path, join(parent.name, name));
  } catch (err) {
    // Swapped for a link or a file since the lstat: not ours to follow.
    if (errnoCode(err) === 'ELOOP' || errnoCode(err) === 'ENOTDIR') return 0;
    throw err;
  }
  let bytes = 0;
  try {
    for (const entry of readdirSync(dir.at())) bytes += removeTree(dir, entry, dryRun);
  } finally {
    dir.close();
  }
  if (!dryRun) rmdirSync(path);
  return bytes;
}

const gone = (err: unknown): boolean => ['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errnoCode(err) ?? '');

/**
 * Removes what is at `path` and all below it, through descriptors from its parent on
 * (removeTree). Nothing there (or a parent that is a link) is not an error.
 * `onlyOwnPrivate`: only a directory of this user's that nobody else can enter (no
 * group or other bits), as every private directory ckpt makes by name in $TMPDIR is.
 * Such a name can outlive its directory (a launcher killed, /tmp emptied at boot) and
 * another user can then make one by that name: theirs is left alone.
 * Returns whether something was removed.
 */
export function removeByName(path: string, onlyOwnPrivate = false): boolean {
  let parent: DirFd;
  try {
    parent = DirFd.open(dirname(path));
  } catch (err) {
    if (gone(err)) return false;
    throw err;
  }
  try {
    const name = basename(path);
    let st;
    try {
      st = lstatSync(parent.at(name));
    } catch (err) {
      if (gone(err)) return false;
      throw err;
    }
    if (onlyOwnPrivate && (!st.isDirectory() || st.uid !== process.geteuid!() || (st.mode & 0o077) !== 0)) return false;
    removeTree(parent, name);
    return true;
  } finally {
    parent.close();
  }
}

/** A private directory this user made by name (mkdtemp in $TMPDIR, …), removed as removeByName does: never another user's. */
export const removeOwnDir = (path: string): boolean => removeByName(path, true);
