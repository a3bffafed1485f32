// Root runs CRIU with every privilege it has: a binary another user could replace (it,
// or a directory above it, writable by them — a PATH entry of theirs, a CKPT_CRIU they
// set in a shared environment) would run their code as root. So as root a CRIU is used
// only if the binary and every directory above it are root's and closed to others
// (a sticky directory, such as /tmp, lets no one replace what root owns in it).
import { CkptError, ErrorCodes } from '../../errors.js';
import { openToOthers } from '../../util/closed-path.js';

/** Why root must not run `path` (undefined: it may; and anyone else may run anything they can). */
export function untrustedByRoot(path: string): CkptError | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  const open = openToOthers(path, [0]);
  if (!open) return undefined;
  return new CkptError(ErrorCodes.PERMISSION, `${path}: ${open.at} ${open.why}; root does not run a CRIU another user could replace`, {
    hint: 'install CRIU where only root can write (`ckpt setup criu`), or fix the owner and mode',
    details: { path, at: open.at },
  });
}
