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
  try {
    writeFileSync(join(logDir, RESTORE_SUCCEEDED), `${pids.join(' ')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    pruneRestoreLogs();
  } catch {
    // housekeeping: the restore stands whatever happens here
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
    const succeeded: { name: string; at: number; pids: number[] }[] = [];
    for (const name of readdirSync(logs.at())) {
      if (!RESTORE_LOG_NAME.test(name)) continue;
      try {
        // A folder of its own (not a link), holding the mark (not followed either).
        if (!lstatSync(logs.at(name)).isDirectory()) continue;
        const mark = lstatSync(logs.at(name, RESTORE_SUCCEEDED));
        if (!mark.isFile()) continue;
        const pids = readFileSync(logs.at(name, RESTORE_SUCCEEDED), 'utf8').split(/\s+/).filter(Boolean).map(Number);
        succeeded.push({ name, at: mark.mtimeMs, pids });
      } catch {
        // no mark: a failure (kept) or a restore in progress
      }
    }
    succeeded.sort((a, b) => b.at - a.at);
    const removed: string[] = [];
    for (const old of succeeded.slice(keep)) {
      if (old.pids.some(alive)) continue;
      rmSync(logs.at(old.name), { recursive: true, force: true });
      removed.push(old.name);
    }
    return removed;
  } finally {
    logs.close();
  }
}
