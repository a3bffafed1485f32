// Root runs CRIU with every privilege it has: a binary another user could replace (it,
// or a directory above it, writable by them — a PATH entry of theirs, a CKPT_CRIU they
// set in a shared environment) would run their code as root. So as root a CRIU is used
// only if the binary and every directory above it are root's and closed to others
// (a sticky directory, such as /tmp, lets no one replace what root owns in it).
import { realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { CkptError, ErrorCodes } from '../../errors.js';

/** Why root must not run `path` (undefined: it may; and anyone else may run anything they can). */
export function untrustedByRoot(path: string): CkptError | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return undefined; // gone: judged (not found) by whoever runs it
  }
  for (let p = real, file = true; ; file = false, p = dirname(p)) {
    const st = statSync(p);
    const opened = (st.mode & 0o022) !== 0 && !(!file && (st.mode & 0o1000) !== 0);
    if (st.uid !== 0 || opened) {
      return new CkptError(ErrorCodes.PERMISSION, `${path}: ${p === real ? 'the binary' : p} ${st.uid !== 0 ? `belongs to uid ${st.uid}` : 'is writable by other users'}; root does not run a CRIU another user could replace`, {
        hint: 'install CRIU where only root can write (`ckpt setup criu`), or fix the owner and mode',
        details: { path, at: p },
      });
    }
    if (dirname(p) === p) return undefined;
  }
}
