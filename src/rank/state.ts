// The rank library's own state in a self checkpoint: counters, messages received
// but not yet consumed, frames not yet sent. A restarted rank starts from it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';
import { closeSnapshot, isJobSnapshot, openSnapshot } from '../store/store.js';
import { readPackSlice } from '../store/pack.js';
import { LIBRARY_STATE, type SelfRestartFrom as RestartFrom } from '../crs/self/job-rank.js';

export interface LibraryState {
  rank: number;
  size: number;
  sent: number[];
  received: number[];
  /** Arrived, unmatched messages in arrival order (payload base64). */
  unexpected: { source: number; tag: number; kind: number; payload: string }[];
  /** Encoded frames not yet handed to a socket (base64). */
  unsent: { dest: number; frame: string }[];
  safePoint?: number;
}


function bad(what: string): never {
  throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `invalid rank library state: ${what}`);
}

/** Reads what a restarted rank resumes from: its directory in the job snapshot. */
export function loadRestart(snapshotDir: string, rank: number, size: number): { from: RestartFrom; library: LibraryState } {
  const snapshot = openSnapshot(snapshotDir);
  if (!isJobSnapshot(snapshot)) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${snapshotDir} is not a job snapshot`);
  const m = snapshot.manifest;
  if (m.job.size !== size) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `the snapshot holds ${m.job.size} ranks, this job has ${size}`);
  const rec = m.ranks[rank];
  if (!rec) bad(`no rank ${rank}`);
  // Read by name from here on (ranks run as the job's user, who wrote it): hold no descriptor
  // that a later CRIU dump of this rank would have to restore.
  closeSnapshot(snapshot);
  const rankDir = join(snapshot.dir, rec.dir);
  // A small rank's state is a slice of the job's pack file; a large one's, files of its own.
  const pack = rec.packed ? { path: join(snapshot.dir, rec.packed.file), ...rec.packed } : undefined;
  let library: LibraryState;
  try {
    library = JSON.parse((pack ? readPackSlice(pack.path, pack.library) : readFileSync(join(rankDir, LIBRARY_STATE))).toString('utf8')) as LibraryState;
  } catch (err) {
    if (err instanceof CkptError) throw err;
    bad(`rank ${rank}'s library state cannot be read (${(err as Error).message})`);
  }
  if (!library || typeof library !== 'object') bad('not an object');
  const counts = (a: unknown) => Array.isArray(a) && a.length === size && a.every((n) => Number.isSafeInteger(n) && n >= 0);
  if (library.rank !== rank || !counts(library.sent) || !counts(library.received)) bad('counters');
  if (!Array.isArray(library.unexpected) || !Array.isArray(library.unsent)) bad('queues');
  if (!Number.isSafeInteger(library.safePoint)) bad('safePoint');
  return {
    from: {
      dir: snapshot.dir,
      store: snapshot.store,
      seq: snapshot.seq,
      rankDir,
      ...(pack ? { packed: { path: pack.path, state: pack.state, binary: pack.binary } } : {}),
      safePoint: library.safePoint!,
      previousPid: rec.pid,
      previousHostname: m.host,
    },
    library,
  };
}
