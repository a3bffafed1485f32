// Restore logs: every restore writes CRIU's log (and, detached, the restored process's
// output) into a folder of its own under <state>/logs (restore-*). Of the successful
// ones only the newest CKPT_RESTORE_LOGS_KEEP stay, and never one whose restored
// process still runs (it may be writing its output there); of the failed ones, kept for
// the user to read, the newest CKPT_RESTORE_LOGS_KEEP_FAILED (they had no bound, and
// every restore looks at every folder: 2,800 on a test machine cost each restart
// tens of ms), and none younger than an hour (it may be a restore under way).
import { lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envNumber } from '../config.js';
import { DirFd } from './dirfd.js';
import { logsDir } from './paths.js';
import { PRIVATE_FILE_MODE } from './fsx.js';

/** The mark a successful restore leaves in its folder: the restored pids, one line. */
export const RESTORE_SUCCEEDED = 'succeeded';
const RESTORE_LOG_NAME = /^restore-[\w.-]+$/;

/** Marks a restore's log folder as a success (with the pids it restored), then prunes the older ones. */
export function restoreSucceeded(logDir: string, pids: number[]): void {
  if (!markSucceeded(logDir, pids)) return;
  try {
    pruneRestoreLogs();
  } catch {
    // housekeeping: the restore stands whatever happens here
  }
}

/** Only marks the folder (a restore whose prune ran beside CRIU: pruneWhileRestoring). */
export function markSucceeded(logDir: string, pids: number[]): boolean {
  try {
    writeFileSync(join(logDir, RESTORE_SUCCEEDED), `${pids.join(' ')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    return true;
  } catch {
    return false; // housekeeping, as above
  }
}

const alive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** A folder without a mark younger than this may be a restore under way, not a failure. */
const FAILED_SETTLED_MS = 3_600_000;

/** Folders looked at between two turns of the event loop (pruneWhileRestoring). */
const SLICE = 128;

/**
 * The prune: yields every SLICE folders (a caller may let other work run there), and
 * returns the names removed. The logs directory also holds every failed restore's
 * folder — thousands on a test machine, all looked at by every restore — so one lstat
 * per folder (its mark), none for a missing one thrown: the entry's type already says
 * folder, not link. The marks are looked at by path (a wrong answer can only keep a
 * folder, or propose one whose pids are then read through the descriptor); the pids
 * are read, and folders removed, through the logs directory's descriptor.
 */
function* prune(keep: number, keepFailed = envNumber('CKPT_RESTORE_LOGS_KEEP_FAILED')): Generator<void, string[]> {
  let logs: DirFd;
  try {
    logs = DirFd.open(logsDir());
  } catch {
    return [];
  }
  try {
    const base = logsDir();
    const succeeded: { name: string; at: number }[] = [];
    const failed: { name: string; at: number }[] = [];
    let seen = 0;
    for (const entry of readdirSync(logs.at(), { withFileTypes: true })) {
      if (!entry.isDirectory() || !RESTORE_LOG_NAME.test(entry.name)) continue;
      if (++seen % SLICE === 0) yield;
      try {
        // Joined by hand: path.join's normalizing cost as much as the lstat.
        const mark = lstatSync(`${base}/${entry.name}/${RESTORE_SUCCEEDED}`, { throwIfNoEntry: false });
        if (mark?.isFile()) succeeded.push({ name: entry.name, at: mark.mtimeMs });
        else if (!mark) {
          const folder = lstatSync(`${base}/${entry.name}`, { throwIfNoEntry: false });
          if (folder?.isDirectory()) failed.push({ name: entry.name, at: folder.mtimeMs });
        }
      } catch {
        // unreadable: left alone
      }
    }
    succeeded.sort((a, b) => b.at - a.at);
    const removed: string[] = [];
    for (const old of succeeded.slice(keep)) {
      try {
        const pids = readFileSync(logs.at(old.name, RESTORE_SUCCEEDED), 'utf8').split(/\s+/).filter(Boolean).map(Number);
        if (pids.some(alive)) continue;
      } catch {
        continue; // its mark went meanwhile (another restore pruned it)
      }
      rmSync(logs.at(old.name), { recursive: true, force: true });
      removed.push(old.name);
    }
    failed.sort((a, b) => b.at - a.at);
    const settled = Date.now() - FAILED_SETTLED_MS;
    for (const old of failed.slice(keepFailed)) {
      if (old.at > settled) continue;
      if (++seen % SLICE === 0) yield;
      rmSync(logs.at(old.name), { recursive: true, force: true });
      removed.push(old.name);
    }
    return removed;
  } finally {
    logs.close();
  }
}

/**
 * Removes the folders of successful restores beyond the newest `keep` (by the time of
 * their mark) whose restored processes are all gone, and of failed ones beyond the
 * newest `keepFailed` older than an hour. Returns the names removed.
 */
export function pruneRestoreLogs(keep = envNumber('CKPT_RESTORE_LOGS_KEEP'), keepFailed = envNumber('CKPT_RESTORE_LOGS_KEEP_FAILED')): string[] {
  const steps = prune(keep, keepFailed);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * The prune of a restore under way (its own folder not marked yet): the others beyond
 * the newest KEEP - 1, so that with its own mark KEEP stay (a restore that fails
 * leaves one fewer: these are only housekeeping). Run beside CRIU's work, in slices:
 * between them this thread answers CRIU and carries the verification on, which a
 * restore waits for. Never rejects.
 */
export async function pruneWhileRestoring(): Promise<void> {
  try {
    const steps = prune(Math.max(0, envNumber('CKPT_RESTORE_LOGS_KEEP') - 1));
    while (!steps.next().done) await new Promise((resolve) => setImmediate(resolve));
  } catch {
    // housekeeping
  }
}
