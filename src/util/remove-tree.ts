// Removing a directory tree that may sit where another user could act (a store they
// prepared, /tmp): each directory opened through its parent's descriptor without
// following a link, a link removed and never followed.
import { lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { DirFd } from './dirfd.js';

/**
 * Removes `name` inside `parent` and all below it. Returns the bytes of the files
 * removed (counted only, with `dryRun`).
 */
export function removeTree(parent: DirFd, name: string, dryRun = false): number {
  const path = parent.at(name);
  const st = lstatSync(path);
  if (!st.isDirectory()) {
    if (!dryRun) unlinkSync(path);
    return st.isFile() ? st.size : 0;
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
