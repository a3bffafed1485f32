// Root reaching a directory by a path that may run through other users' directories
// (/tmp/shared/jobs/store, a scheduler's scratch space): walked from `/` one name at a
// time, each looked up inside the directory before it (/proc/self/fd/N/NAME). A
// symbolic link on the way is followed only if root or the caller owns it — one another
// user planted (their directory swapped for a link to /etc) is refused, never followed
// — and a name swapped for a link after it was checked fails to open (O_NOFOLLOW).
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readlinkSync, type Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const openRoot = () => openSync('/', O_RDONLY | O_DIRECTORY);

/** Whether paths are walked so: as root (an ordinary user's links can only lead where that user may go). */
export const walksPaths = (): boolean => process.geteuid?.() === 0;

/**
 * The descriptor of the directory at `path` (the caller closes it), reached as above.
 * `mode`: missing directories on the way are created with it, each through its
 * parent's descriptor. ENOENT, ENOTDIR, ELOOP (a swap, or too many links) as from open().
 */
export function walkToDir(path: string, mode?: number): number {
  const me = process.geteuid?.() ?? 0;
  const todo = resolve(path).split('/').filter(Boolean);
  let fd = openRoot();
  let links = 0;
  try {
    while (todo.length > 0) {
      const name = todo.shift()!;
      const at = `/proc/self/fd/${fd}/${name}`;
      let st: Stats | undefined;
      try {
        st = lstatSync(at);
      } catch (err) {
        if (mode === undefined || errnoCode(err) !== 'ENOENT') throw err;
        try {
          mkdirSync(at, { mode });
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e; // made meanwhile: opened below, not followed
        }
      }
      if (st?.isSymbolicLink()) {
        if (st.uid !== 0 && st.uid !== me) {
          throw new CkptError(ErrorCodes.PERMISSION, `${path}: a symbolic link on its way (${name}) belongs to uid ${st.uid}: not followed`, {
            hint: 'give the real path, through directories of your own or root\'s',
          });
        }
        if (++links > 40) throw Object.assign(new Error(`${path}: too many symbolic links`), { code: 'ELOOP' });
        const target = readlinkSync(at);
        if (target.startsWith('/')) {
          const top = openRoot();
          closeSync(fd);
          fd = top;
        }
        todo.unshift(...target.split('/').filter(Boolean));
        continue;
      }
      const next = openSync(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Opens a file for appending (created 0600 if missing): as root through its directory
 * reached by walkToDir, its own name never followed (ELOOP), never blocking on a FIFO;
 * anything but a regular file or a device (/dev/null) is EINVAL. A log or output file root was told to use,
 * maybe in a directory another user can change.
 */
export function openAppendFile(path: string): number {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | O_NOFOLLOW | constants.O_NONBLOCK;
  let fd: number;
  if (walksPaths() && !path.startsWith('/proc/')) {
    const dir = walkToDir(dirname(resolve(path)));
    try {
      fd = openSync(`/proc/self/fd/${dir}/${basename(path)}`, flags, 0o600);
    } finally {
      closeSync(dir);
    }
  } else fd = openSync(path, flags, 0o600);
  // A regular file, or a device such as /dev/null; not a FIFO or a socket another user's process could hold the other end of.
  const st = fstatSync(fd);
  if (!st.isFile() && !st.isCharacterDevice()) {
    closeSync(fd);
    throw Object.assign(new Error(`${path}: not a regular file`), { code: 'EINVAL' });
  }
  return fd;
}
