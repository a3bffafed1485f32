// File-system primitives for durable, private snapshots.
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, writeFileSync, renameSync, chmodSync, unlinkSync } from 'node:fs';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { walksPaths, walkToDir } from './safe-walk.js';
import { openToOthers } from './closed-path.js';

/** Snapshots hold process memory: directories 0700, files 0600. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** A directory and its missing parents, 0700; as root, walked (safe-walk.ts): never through another user's link. */
export function mkdirPrivate(path: string): void {
  // A path through one of our descriptors (/proc/<pid>/fd/N/…) is anchored already.
  if (!walksPaths() || path.startsWith('/proc/')) {
    mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
    chmodPrivateDir(path);
    return;
  }
  const fd = walkToDir(path, PRIVATE_DIR_MODE);
  try {
    const st = fstatSync(fd);
    // Root's own: another user could plant links in a directory of theirs that root writes in.
    if (st.uid !== 0) throw new CkptError(ErrorCodes.PERMISSION, `${path} belongs to uid ${st.uid}: root keeps nothing in another user's directory`);
    // Nor in a directory of root's inside another user's (they could rename it and put a link in its place).
    const open = openToOthers(path, [0]);
    if (open) throw new CkptError(ErrorCodes.PERMISSION, `${path}: ${open.at} ${open.why}: root keeps nothing where another user could replace it`);
    if ((st.mode & 0o7777) !== PRIVATE_DIR_MODE) fchmodSync(fd, PRIVATE_DIR_MODE);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes a directory 0700, unless it is already: a chmod is a metadata write, which
 * waited 1–7 ms on a busy ext4 journal in a checkpoint's pause; a stat does not.
 */
export function chmodPrivateDir(path: string): void {
  if ((lstatSync(path).mode & 0o7777) !== PRIVATE_DIR_MODE) chmodSync(path, PRIVATE_DIR_MODE);
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync in libuv's pool: several at once share one journal commit instead of queueing for one each. */
export async function fsyncPathAsync(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Makes one file or directory of a snapshot private (`mode`) and durable, through its
 * own descriptor: opened without following a link, so a link planted in its place
 * is refused rather than chmod'ed or synced through.
 */
export async function fsyncPrivateAsync(path: string, mode?: number, sync = true): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    if (mode !== undefined) await handle.chmod(mode);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a private file and fsyncs it (for files inside a snapshot that is committed as a whole later). */
export function writeFileDurable(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, 'w', PRIVATE_FILE_MODE);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file under a temporary name, fsyncs it, renames it into place, fsyncs the directory. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  // Created exclusively, never through a link planted under its name (one left by a dead process of our pid goes first).
  const create = () => openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, PRIVATE_FILE_MODE);
  let fd: number;
  try {
    fd = create();
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    unlinkSync(tmp);
    fd = create();
  }
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncPath(dirname(path));
}
