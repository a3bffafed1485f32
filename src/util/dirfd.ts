// Directories used through a descriptor, not by name. Node has no openat(), but
// /proc/<pid>/fd/N/NAME resolves NAME inside the directory N was opened on, whatever
// has since been renamed or swapped along the path it was opened by: another user who
// can write an ancestor directory cannot redirect a single read or write.
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { walksPaths, walkToDir } from './safe-walk.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL, O_NONBLOCK } = constants;

export class DirFd {
  private constructor(
    readonly fd: number,
    /** The name it was opened by: for messages only, never for I/O. */
    readonly name: string,
    readonly stat: Stats,
  ) {}

  /**
   * Opens a directory; its last component must not be a symbolic link (ELOOP/ENOTDIR
   * otherwise). As root, a path not through one of our descriptors is walked
   * (safe-walk.ts): no other user's link on its way is followed.
   */
  static open(path: string, name = path): DirFd {
    const fd = walksPaths() && !path.startsWith('/proc/') ? walkToDir(path) : openSync(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      return new DirFd(fd, name, fstatSync(fd));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * The path of `rel` inside this directory as other processes (CRIU, ranks) can open
   * it: through our descriptor, by our pid (`/proc/self` would be theirs).
   */
  at(...rel: string[]): string {
    return join(`/proc/${process.pid}/fd/${this.fd}`, ...rel);
  }

  /** A subdirectory created here (mode, not followed if it exists) and opened. */
  mkdir(name: string, mode: number): DirFd {
    mkdirSync(this.at(name), { mode });
    return DirFd.open(this.at(name), join(this.name, name));
  }

  /** A new file, created here exclusively (never through a link planted in its place): its fd. */
  createFile(name: string, mode: number): number {
    return openSync(this.at(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

/**
 * Opens a file for reading without following a link and without blocking on a FIFO
 * (a FIFO planted as a manifest would hang an open without O_NONBLOCK): its fd and stat.
 */
export function openNoFollow(path: string): { fd: number; stat: Stats } {
  const fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    return { fd, stat: fstatSync(fd) };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Opens `rel` below the directory `base` (a /proc/<pid>/fd/N path) for reading, one
 * name at a time, following no link at any level and never blocking on a FIFO: a
 * directory its owner swapped for a link after it was checked leads nowhere. Its fd
 * (a regular file's) and stat; ELOOP/ENOTDIR (a link), EINVAL (not a regular file).
 */
export function openFileBelow(base: string, rel: string): { fd: number; stat: Stats } {
  const parts = rel.split('/').filter(Boolean);
  let dir: number | undefined;
  try {
    for (const name of parts.slice(0, -1)) {
      const next = openSync(dir === undefined ? join(base, name) : `/proc/self/fd/${dir}/${name}`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (dir !== undefined) closeSync(dir);
      dir = next;
    }
    const file = openNoFollow(dir === undefined ? join(base, parts.at(-1) ?? '') : `/proc/self/fd/${dir}/${parts.at(-1)}`);
    if (!file.stat.isFile()) {
      closeSync(file.fd);
      throw Object.assign(new Error(`${rel}: not a regular file`), { code: 'EINVAL' });
    }
    return file;
  } finally {
    if (dir !== undefined) closeSync(dir);
  }
}

/**
 * A small file's text, read through openNoFollow if `accept` takes its stat
 * (undefined if not); the descriptor closed either way. Open errors are thrown.
 */
export function readAccepted(path: string, accept: (stat: Stats) => boolean): string | undefined {
  const { fd, stat } = openNoFollow(path);
  try {
    return accept(stat) ? readFileSync(fd, 'utf8') : undefined;
  } finally {
    closeSync(fd);
  }
}

/** ELOOP from O_NOFOLLOW: the last component was a symbolic link. */
export const isLinkRefusal = (err: unknown): boolean => errnoCode(err) === 'ELOOP';
