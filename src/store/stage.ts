// Node-local staging of a checkpoint (`--stage DIR`): a criu rank dumps its images
// into DIR/<job>/<seq>/rank-N on its own node's disk, the job goes on, and the
// node's agent (or, for a job on one host, the coordinator) copies them into the
// pending snapshot on the shared store, fsyncs and checksums them there, and
// removes the staged copy. What may be used as DIR, where a rank's part goes in
// it, the copy, and the clean-up.
import { constants as fsConstants, lstatSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { errnoCode } from '../errors.js';
import { openToOthers } from '../util/closed-path.js';
import { PRIVATE_DIR_MODE } from '../util/fsx.js';
import { parseTag } from '../util/writer-tag.js';
import type { FileEntry } from './checksum.js';
import { noSpace } from './layout.js';
import { syncFiles } from './write.js';

/**
 * Why `dir` cannot be a stage directory here, or undefined if it can: an absolute
 * path to a directory (not a link to one) that no other user can write into (ckpt
 * creates, copies and removes below it by path, and a rank's images must not be
 * replaced before their copy is checksummed), owned by root or, for a user who is
 * not root, by that user.
 */
export function stageDirProblem(dir: string, euid = process.geteuid?.() ?? -1): string | undefined {
  if (!isAbsolute(dir)) return `'${dir}' is not an absolute path`;
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    return `${dir}: ${errnoCode(err) === 'ENOENT' ? 'no such directory' : (err as Error).message}`;
  }
  if (!st.isDirectory()) return `${dir} is not a directory${st.isSymbolicLink() ? ' (a symbolic link)' : ''}`;
  if (st.uid !== 0 && st.uid !== euid) return `${dir} is owned by uid ${st.uid}, not ${euid === 0 ? 'root' : 'you or root'}`;
  if ((st.mode & 0o022) !== 0) return `${dir} is writable by other users (mode ${(st.mode & 0o7777).toString(8)})`;
  // Nor a directory above it: another user could put a directory of theirs in its place, and ckpt's CRIU write through their links.
  const above = openToOthers(dir, euid === 0 ? [0] : [0, euid]);
  if (above) return `${above.at} (on the way to ${dir}) ${above.why}: another user could replace ${dir}`;
  return undefined;
}

/**
 * Where rank `rankDir` (`rank-N`) of checkpoint `seq` of job `jobId` is staged under
 * `stage`: `<seq>-<writer>` names the process that copies and removes it (its node's
 * agent, or the coordinator of a job on one host: util/writer-tag.ts), so that what it
 * leaves when it dies can be told from what is in use (stage-sweep.ts).
 */
export function stagedRankDir(stage: string, jobId: string, seq: number, rankDir: string, writer?: string): string {
  return join(stage, jobId, writer !== undefined && parseTag(writer) ? `${seq}-${writer}` : String(seq), rankDir);
}

/**
 * Copies the staged tree `from` (a rank's directory) into `to` (its directory in
 * the pending snapshot, which exists), then fsyncs and checksums the copies there.
 * Entries are relative to `to`. A full disk is ECKPT_NO_SPACE. The staged copy is
 * left for discardStaged.
 */
export async function copyStaged(from: string, to: string): Promise<FileEntry[]> {
  await copyTree(from, to);
  return syncFiles(to, to);
}

async function copyTree(from: string, to: string): Promise<void> {
  for (const e of await readdir(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory()) {
      try {
        await mkdir(dst, { mode: PRIVATE_DIR_MODE });
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      await copyTree(src, dst);
    } else if (e.isFile()) {
      try {
        // COPYFILE_EXCL: never through something already there under the name.
        await copyFile(src, dst, fsConstants.COPYFILE_EXCL);
      } catch (err) {
        noSpace(err, `copying ${src}`);
      }
    }
    // Anything else (CRIU writes only directories and regular files) is not copied.
  }
}

/** Removes a rank's staged directory, and its checkpoint's and job's directories once empty. Never throws. */
export async function discardStaged(rankDir: string): Promise<void> {
  await rm(rankDir, { recursive: true, force: true }).catch(() => {});
  for (const d of [dirname(rankDir), dirname(dirname(rankDir))]) {
    try {
      await rmdir(d);
    } catch {
      return; // not empty (another rank's, another checkpoint's), or gone
    }
  }
}
