// Where a CRIU worker's stderr goes: what it says before its log file is open (a bad
// option, a missing capability), read only when a call fails. An unlinked private
// file rather than a pipe: a pipe needs a stream in this process — its setup, its
// reads and its flush when criu exits — on every call, for text that is almost
// always empty.
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fsx.js';
import { logsDir } from '../util/paths.js';

/** What is kept of it, as with a pipe. */
const MAX_TEXT = 8192;

/** A new capture file (private, already unlinked: nothing is left behind); undefined when none can be made. */
export function openStderrFile(): number | undefined {
  try {
    const dir = logsDir();
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const path = join(dir, `.criu-stderr-${process.pid}-${randomBytes(6).toString('hex')}`);
    const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    const fd = openSync(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, PRIVATE_FILE_MODE);
    try {
      unlinkSync(path);
    } catch {
      // left behind: harmless, and named as ours
    }
    return fd;
  } catch {
    return undefined;
  }
}

/** Its text (the first MAX_TEXT bytes); the descriptor is closed. */
export function takeStderrFile(fd: number): string {
  try {
    const size = Math.min(MAX_TEXT, fstatSync(fd).size);
    if (size === 0) return '';
    const buf = Buffer.alloc(size);
    return buf.subarray(0, readSync(fd, buf, 0, size, 0)).toString('utf8');
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}
