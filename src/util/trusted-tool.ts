// The system tools ckpt runs (srun, scontrol, nft, nsenter, unshare, getent, prlimit…)
// are looked up in PATH as exec would. As root, a PATH entry another user can write
// (their ~/bin, a shared tools directory) would run their code as root: so root looks
// only in entries that are root's and closed to others all the way up (a sticky
// directory excepted, as for CRIU's binary), runs a tool by its resolved path once the
// file is root's and closed too, and hands the scripts it starts that PATH alone.
import { realpathSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';
import { openToOthers } from './closed-path.js';
import { isExecutableFile } from './command.js';

const asRoot = () => process.geteuid?.() === 0;

/** As root, the entries of `path` nobody but root could change (absolute ones only); anyone else, `path` as is. */
export function trustedPath(path: string = process.env.PATH ?? ''): string {
  if (!asRoot()) return path;
  return path
    .split(delimiter)
    .filter((dir) => isAbsolute(dir) && isDir(dir) && openToOthers(dir, [0]) === undefined)
    .join(delimiter);
}

/**
 * What to run `name` by. Anyone but root: `name` (exec looks it up). Root: the resolved
 * path of the first match in `path` that nobody else could replace; `name` when there is
 * no match at all (the spawn then fails as it would have); PERMISSION when the only
 * matches are ones another user could replace.
 */
export function trustedTool(name: string, path: string = process.env.PATH ?? ''): string {
  if (!asRoot() || name.includes('/')) return name;
  let refused: { file: string; at: string; why: string } | undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    if (!isExecutableFile(file)) continue;
    const open = isAbsolute(dir) ? openToOthers(file, [0]) : { at: dir, why: 'is a relative PATH entry' };
    if (!open) return realpathSync(file);
    refused ??= { file, ...open };
  }
  if (!refused) return name;
  throw new CkptError(ErrorCodes.PERMISSION, `root does not run ${refused.file}: ${refused.at} ${refused.why}`, {
    hint: `install ${name} where only root can write, or take that directory out of root's PATH`,
    details: { tool: name, path: refused.file, at: refused.at },
  });
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
