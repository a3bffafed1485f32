// Root runs CRIU with every privilege it has: a binary another user could replace (it,
// or a directory above it, writable by them — a PATH entry of theirs, a CKPT_CRIU they
// set in a shared environment) would run their code as root. So as root a CRIU is used
// only if the binary and every directory above it are root's and closed to others
// (a sticky directory, such as /tmp, lets no one replace what root owns in it).
import { realpathSync } from 'node:fs';
import { CkptError, ErrorCodes } from '../../errors.js';
import { openToOthers } from '../../util/closed-path.js';

/**
 * The path to run `path` by: as root, its resolved path (a link another user could
 * re-point is not run through) once it and every directory above it are root's and
 * closed to others, or why not; anyone else, `path` itself.
 */
export function runnableByRoot(path: string): string | CkptError {
  if (process.geteuid?.() !== 0) return path;
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    return new CkptError(ErrorCodes.CRIU_NOT_FOUND, `${path} cannot be resolved: ${(err as Error).message}`, { details: { path } });
  }
  const open = openToOthers(real, [0]);
  if (!open) return real;
  return new CkptError(ErrorCodes.PERMISSION, `${path}: ${open.at} ${open.why}; root does not run a CRIU another user could replace`, {
    hint: 'install CRIU where only root can write (`ckpt setup criu`), or fix the owner and mode',
    details: { path, at: open.at },
  });
}
