// Whether anyone but the given owners could change what a path leads to: a directory
// on the way (or the file) another user owns, or one others may write that is not
// sticky (a sticky one, such as /tmp, lets no one rename or remove what others own in
// it). Root uses such a path only if nobody else could: CRIU's binary, --stage DIR.
import { realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** The first place on the way to `path` (its links resolved) others could change, and why; undefined if none. */
export function openToOthers(path: string, owners: readonly number[]): { at: string; why: string } | undefined {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return undefined; // gone: whoever uses it finds out
  }
  for (let p = real, last = true; ; last = false, p = dirname(p)) {
    const st = statSync(p);
    if (!owners.includes(st.uid)) return { at: p, why: `belongs to uid ${st.uid}` };
    // The path's own directory or file: no sticky exception (others could add to it).
    if ((st.mode & 0o022) !== 0 && (last || (st.mode & 0o1000) === 0)) return { at: p, why: 'is writable by other users' };
    if (dirname(p) === p) return undefined;
  }
}
