// Restore logs: every restore writes CRIU's log (and, detached, the restored process's
// output) into a folder of its own under <state>/logs (restore-*). A failed restore's
// folder is kept for the user to read; of the successful ones only the newest
// CKPT_RESTORE_LOGS_KEEP stay, and never one whose restored process still runs (it
// may be writing its output there).
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
  if (markSucceeded(logDir, pids)) prunedQuietly();
}

/**
 * Only marks the folder: for a restore that pruned the others while CRIU worked
 * (pruneWhileRestoring), off its critical path.
 */
export function markSucceeded(logDir: string, pids: number[]): boolean {
  try {
    writeFileSync(join(logDir, RESTORE_SUCCEEDED), `${pids.join(' ')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    return true;
  } catch {
    // housekeeping: the restore stands whatever happens here
    return false;
  }
}

/**
 * The prune of a restore that is under way (its own folder not marked yet): the
 * others beyond the newest KEEP - 1, so that with its own mark KEEP stay. Run while
 * CRIU restores, when this thread would only wait; a restore that then fails leaves
 * one fewer (successes' logs are only housekeeping).
 */
export function pruneWhileRestoring(): void {
  prunedQuietly(Math.max(0, envNumber('CKPT_RESTORE_LOGS_KEEP') - 1));
}

function prunedQuietly(keep?: number): void {
  try {
    pruneRestoreLogs(keep);
  } catch {
    // housekeeping, as above
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

/**
 * Removes the folders of successful restores beyond the newest `keep` (by the time of
 * their mark) whose restored processes are all gone. Returns the names removed.
 */
export function pruneRestoreLogs(keep = envNumber('CKPT_RESTORE_LOGS_KEEP')): string[] {
  let logs: DirFd;
  try {
    logs = DirFd.open(logsDir());
  } catch {
    return [];
  }
  try {
    // One lstat per folder (its mark, not followed), no exception for a missing one:
    // the logs directory holds every failed restore's folder too, thousands on a test
    // machine, all looked at by every restore. The entry's type says folder (not a link).
    // Names joined by hand: path.join's normalizing cost as much as the lstat.
    const at = logs.at();
    const succeeded: { name: string; at: number }[] = [];
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (!entry.isDirectory() || !RESTORE_LOG_NAME.test(entry.name)) continue;
      try {
        const mark = lstatSync(`${at}/${entry.name}/${RESTORE_SUCCEEDED}`, { throwIfNoEntry: false });
        if (mark?.isFile()) succeeded.push({ name: entry.name, at: mark.mtimeMs });
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
    return removed;
  } finally {
    logs.close();
  }
}
