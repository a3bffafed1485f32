// The private directory of a node agent's relay socket (`$TMPDIR/ckpt-agent-XXXXXX`,
// 0700), and the sweep of those a killed agent left: the agent removes its own when it
// ends, but not when it is SIGKILLed (or its node crashes). Each holds a `writer` file
// naming the agent that made it (util/writer-tag.ts); a starting agent removes the ones
// of this user whose agent is provably gone (util/writer-beacon.ts). The base is /tmp or
// the like, which every user can write: each candidate is opened without following a
// link and checked as opened (ours, 0700, a real directory), and removed through its
// descriptor.
import { closeSync, lstatSync, mkdtempSync, readdirSync, rmdirSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirFd, readAccepted } from '../util/dirfd.js';
import { PRIVATE_FILE_MODE } from '../util/fsx.js';
import { removeOwnDir, removeTree } from '../util/remove-tree.js';
import { heldTag, writerGone } from '../util/writer-beacon.js';
import { parseTag } from '../util/writer-tag.js';

const PREFIX = 'ckpt-agent-';
/** mkdtemp's six characters after the prefix. */
const RELAY_DIR = /^ckpt-agent-[A-Za-z0-9]{6}$/;
const WRITER_FILE = 'writer';

/** Where relay directories go: a unix socket's path has ~107 bytes at most, so a long TMPDIR (a batch system's per-job one) falls back to /tmp. */
export const relayBase = (): string => (Buffer.byteLength(tmpdir()) <= 64 ? tmpdir() : '/tmp');

/** A new relay directory in `base` (0700), naming this process as its writer. */
export async function makeRelayDir(base = relayBase()): Promise<string> {
  const tag = await heldTag();
  const path = mkdtempSync(join(base, PREFIX));
  if (!tag) return path; // nothing to tell it by: kept by every sweep
  const dir = DirFd.open(path);
  try {
    const fd = dir.createFile(WRITER_FILE, PRIVATE_FILE_MODE);
    try {
      writeSync(fd, `${tag}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    removeOwnDir(path);
    throw err;
  } finally {
    dir.close();
  }
  return path;
}

/** Whether the writer named in an opened relay directory is gone, if the directory and its file are this user's own and closed to others. */
async function deadWriter(dir: DirFd, euid: number): Promise<boolean> {
  if (!dir.stat.isDirectory() || dir.stat.uid !== euid || (dir.stat.mode & 0o7777) !== 0o700) return false;
  let text: string | undefined;
  try {
    text = readAccepted(dir.at(WRITER_FILE), (st) => st.isFile() && st.uid === euid && st.size <= 512);
  } catch {
    return false; // none (an older agent's, or one killed before it wrote it), or a link
  }
  const tag = text === undefined ? undefined : parseTag(text);
  return tag !== undefined && writerGone(tag);
}

/**
 * Removes the relay directories in `base` whose agents are provably gone (this user's,
 * this host's); never a live agent's, another user's, or anything it cannot tell.
 * Returns the names removed. Never throws: a sweep that cannot look is no sweep.
 */
export async function sweepRelayDirs(base = relayBase()): Promise<string[]> {
  const euid = process.geteuid?.() ?? -1;
  const removed: string[] = [];
  let parent: DirFd;
  try {
    parent = DirFd.open(base);
  } catch {
    return removed;
  }
  try {
    for (const name of readdirSync(parent.at()).filter((n) => RELAY_DIR.test(n))) {
      let dir: DirFd;
      try {
        dir = DirFd.open(parent.at(name), join(base, name));
      } catch {
        continue; // a link, a file, gone, or not ours to open
      }
      try {
        if (!(await deadWriter(dir, euid))) continue;
        for (const entry of readdirSync(dir.at())) removeTree(dir, entry);
        // The name still the directory we emptied (in a sticky /tmp only we could have changed it).
        const now = lstatSync(parent.at(name));
        if (now.ino !== dir.stat.ino || now.dev !== dir.stat.dev) continue;
        rmdirSync(parent.at(name));
        removed.push(name);
      } catch {
        // gone meanwhile (another agent's sweep), or not ours to remove
      } finally {
        dir.close();
      }
    }
  } catch {
    // the base unreadable: nothing swept
  } finally {
    parent.close();
  }
  return removed;
}
