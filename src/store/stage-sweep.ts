// --stage DIR after a crash: a node agent (or a one-host job's coordinator) that dies
// mid-checkpoint leaves its ranks' images in DIR/<job>/<seq>-<writer>/ (stage.ts),
// possibly gigabytes, that nobody else would copy or remove. Whoever starts using DIR,
// and each stage copy, first removes the checkpoint directories whose writer is
// provably gone (util/writer-tag.ts, writer-beacon.ts: this host's, not ourselves, no
// longer running), then their job's directory once empty. Only this user's
// directories, opened without following a link and removed through descriptors;
// untagged ones are never taken.
import { lstatSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { DirFd } from '../util/dirfd.js';
import { removeTree } from '../util/remove-tree.js';
import { writerGone } from '../util/writer-beacon.js';
import { parseTag } from '../util/writer-tag.js';
import { stageDirProblem } from './stage.js';

/** `<seq>-<writer>`: a checkpoint's staged directory on this node. */
const STAGED_SEQ = /^(\d+)-(.+)$/;

export interface SweptStage {
  /** The checkpoint directories removed, relative to DIR (`<job>/<seq>-<writer>`). */
  removed: string[];
}

/** Opens a directory below `parent` if it is one (not a link) and this user's own. */
function openOwn(parent: DirFd, name: string, euid: number): DirFd | undefined {
  let dir: DirFd;
  try {
    dir = DirFd.open(parent.at(name), join(parent.name, name));
  } catch {
    return undefined;
  }
  if (dir.stat.uid === euid) return dir;
  dir.close();
  return undefined;
}

/** Removes what writers that are gone left staged in `stage` (a usable stage directory; anything else is left alone). Never throws. */
export async function sweepDeadStaged(stage: string): Promise<SweptStage> {
  const euid = process.geteuid?.() ?? -1;
  const removed: string[] = [];
  if (stageDirProblem(stage, euid) !== undefined) return { removed };
  const top = openOwnTop(stage);
  if (!top) return { removed };
  /** Each writer's verdict, asked once. */
  const verdicts = new Map<string, Promise<boolean>>();
  const gone = (tag: string): Promise<boolean> => {
    const t = parseTag(tag);
    if (!t) return Promise.resolve(false);
    if (!verdicts.has(tag)) verdicts.set(tag, writerGone(t));
    return verdicts.get(tag)!;
  };
  try {
    for (const job of readdirSync(top.at())) {
      const jobDir = openOwn(top, job, euid);
      if (!jobDir) continue;
      let took = false;
      try {
        for (const name of readdirSync(jobDir.at())) {
          const m = STAGED_SEQ.exec(name);
          if (!m || !(await gone(m[2]!))) continue;
          try {
            const st = lstatSync(jobDir.at(name));
            if (!st.isDirectory() || st.uid !== euid) continue;
            removeTree(jobDir, name);
            removed.push(`${job}/${name}`);
            took = true;
          } catch {
            // gone meanwhile (another sweep), or not ours to remove
          }
        }
      } catch {
        // unreadable: left
      } finally {
        jobDir.close();
      }
      if (!took) continue;
      try {
        rmdirSync(top.at(job));
      } catch {
        // not empty (a live writer's, an older untagged one's), or gone
      }
    }
  } catch {
    // DIR unreadable: nothing swept
  } finally {
    top.close();
  }
  return { removed };
}

function openOwnTop(stage: string): DirFd | undefined {
  try {
    return DirFd.open(stage);
  } catch {
    return undefined;
  }
}
