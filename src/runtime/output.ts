// Rank output, forwarded line by line with a `[rank]` prefix so the lines of
// different ranks never interleave mid-line. A line is written whole once its
// newline arrives; an over-long line is cut at MAX_LINE so memory stays bounded.
import { chmodSync, closeSync, constants, fchmodSync, fstatSync, ftruncateSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fsx.js';
import { walksPaths, walkToDir } from '../util/safe-walk.js';

const MAX_LINE = 64 * 1024;
const NL = 0x0a;

export interface LineSink {
  (line: Buffer): void;
}

/** Splits a byte stream into lines (without the newline) and hands each to `sink`. */
export function forwardLines(stream: Readable, sink: LineSink): Promise<void> {
  let partial: Buffer[] = [];
  let partialLength = 0;
  const flushPartial = () => {
    if (partialLength === 0) return;
    sink(partial.length === 1 ? partial[0]! : Buffer.concat(partial, partialLength));
    partial = [];
    partialLength = 0;
  };
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (partialLength) {
        partial.push(piece);
        partialLength += piece.length;
        flushPartial();
      } else {
        sink(piece);
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      partial.push(rest);
      partialLength += rest.length;
      if (partialLength >= MAX_LINE) flushPartial();
    }
  });
  return new Promise((resolve) => {
    const done = () => {
      flushPartial();
      resolve();
    };
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

/** A sink writing `[rank] line\n` to a writable stream (stdout/stderr). */
export function prefixedSink(out: Writable, rank: number): LineSink {
  const prefix = Buffer.from(`[${rank}] `);
  return (line) => {
    out.write(Buffer.concat([prefix, line, Buffer.from('\n')]));
  };
}

// ── --output DIR: one file per rank and stream ──────────────────────────────────
// The directory may be someone's shared one (`--output /tmp`, `.`): an existing
// directory keeps its mode; one we create is 0700. The files hold what the ranks
// print: 0600, created exclusively and never through a symlink (O_NOFOLLOW), so a
// name planted in advance by another user is refused rather than written through.

/** How a rank output directory may be used. */
export interface OutputDir {
  dir: string;
  /** Where its files are opened: as root, through a descriptor of it (kept for the process's life), never again by name. */
  io: string;
}

const isOwnerOk = (uid: number): boolean => uid === 0 || uid === (process.geteuid?.() ?? uid);

/**
 * Makes sure `dir` can take rank output: creates it (0700, parents included) when
 * missing, leaves an existing one as it is. Refused: not a directory; owned by
 * another user; writable by others (other users, or a group not our own) unless
 * sticky — there other users cannot remove or rename our files, and ours are
 * created exclusively.
 */
export function prepareOutputDir(dir: string): OutputDir {
  const path = resolvePath(dir);
  // As root, reached without following another user's link (DIR planted as one), and used through its descriptor.
  if (walksPaths()) return checkedOutputDir(dir, path, outputDirFd(dir, path));
  let created: string | undefined;
  try {
    created = mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTDIR' || code === 'EEXIST') throw new CkptError(ErrorCodes.USAGE, `--output ${dir}: not a directory`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new CkptError(ErrorCodes.PERMISSION, `--output ${dir}: cannot create it (${code})`, { cause: err });
    throw err;
  }
  if (created !== undefined) {
    // Only what we made (the umask may have narrowed it differently): 0700.
    for (let p = path; ; p = dirname(p)) {
      chmodSync(p, PRIVATE_DIR_MODE);
      if (p === created || dirname(p) === p) break;
    }
  }
  return checkedOutputDir(dir, path);
}

function outputDirFd(dir: string, path: string): number {
  try {
    return walkToDir(path, PRIVATE_DIR_MODE);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'ELOOP') throw new CkptError(ErrorCodes.USAGE, `--output ${dir}: not a directory`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new CkptError(ErrorCodes.PERMISSION, `--output ${dir}: cannot create it (${code})`, { cause: err });
    throw err;
  }
}

/** Refused: not a directory, another user's, or writable by others and not sticky (`fd`: as root, the one reached). */
function checkedOutputDir(dir: string, path: string, fd?: number): OutputDir {
  const st = fd === undefined ? statSync(path) : fstatSync(fd);
  const refuse = (err: CkptError): never => {
    if (fd !== undefined) closeSync(fd);
    throw err;
  };
  if (!st.isDirectory()) refuse(new CkptError(ErrorCodes.USAGE, `--output ${dir}: not a directory`));
  if (!isOwnerOk(st.uid)) {
    refuse(new CkptError(ErrorCodes.PERMISSION, `--output ${dir}: the directory belongs to uid ${st.uid}, who could replace the rank output files`, {
      hint: 'give a directory of your own',
    }));
  }
  const sticky = (st.mode & 0o1000) !== 0;
  const writableByOthers = (st.mode & 0o002) !== 0 || ((st.mode & 0o020) !== 0 && st.gid !== (process.getegid?.() ?? st.gid));
  if (writableByOthers && !sticky) {
    refuse(new CkptError(ErrorCodes.PERMISSION, `--output ${dir}: the directory is writable by others (mode ${(st.mode & 0o7777).toString(8)}) and not sticky`, {
      hint: 'give a directory of your own (it is created 0700 when missing)',
    }));
  }
  return { dir: path, io: fd === undefined ? path : `/proc/self/fd/${fd}` };
}

/**
 * Opens DIR/NAME for a rank's output: created 0600 with O_EXCL|O_NOFOLLOW; an
 * existing file is reused (truncated, or appended to with `append`) only when it
 * is a regular file of ours with one link, opened without following a symlink.
 */
export function openOutputFile(out: OutputDir, name: string, append = false): number {
  const path = join(out.dir, name);
  const io = join(out.io, name);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_APPEND, O_NONBLOCK } = constants;
  const base = O_WRONLY | O_NOFOLLOW | (append ? O_APPEND : 0);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return openSync(io, base | O_CREAT | O_EXCL, PRIVATE_FILE_MODE);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw outputError(path, err);
    }
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO planted under the name must not block the open.
      fd = openSync(io, base | O_NONBLOCK);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue; // removed meanwhile: create it
      throw outputError(path, err);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.nlink !== 1 || st.uid !== (process.geteuid?.() ?? st.uid)) {
        throw new CkptError(ErrorCodes.PERMISSION, `${path} exists and is not a file of ours: not writing rank output to it`, {
          hint: 'remove it, or give another --output directory',
        });
      }
      if (!append) ftruncateSync(fd, 0);
      fchmodSync(fd, PRIVATE_FILE_MODE);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err instanceof CkptError ? err : outputError(path, err);
    }
  }
  throw new CkptError(ErrorCodes.PERMISSION, `${path}: could not create it exclusively`);
}

function outputError(path: string, err: unknown): CkptError {
  const code = errnoCode(err);
  if (code === 'ELOOP') return new CkptError(ErrorCodes.PERMISSION, `${path} is a symbolic link: not following it for rank output`, { cause: err });
  return new CkptError(code === 'EACCES' || code === 'EPERM' ? ErrorCodes.PERMISSION : ErrorCodes.USAGE, `cannot open ${path} for rank output: ${(err as Error).message}`, { cause: err });
}
