// Removing a snapshot, and what only it still needed: CRIU's nftables lock table of
// a dump that killed its process (`--kill` with TCP connections). That table keeps
// the connections' peers from being reset until a restore takes it down; with the
// snapshot gone no restore will, so it goes too.
import { join } from 'node:path';
import { dumpRunId } from '../criu/images.js';
import { lockTableName, removeLockTable } from '../criu/lock-table.js';
import { removeSnapshot, snapshotPath, type Snapshot } from '../store/store.js';

export interface RemovedSnapshot {
  dir: string;
  /** The nftables lock table removed with it (`CRIU-…`), if one was left. */
  lockTable?: string;
}

export async function removeSnapshotAndLeftovers(snapshot: Snapshot): Promise<RemovedSnapshot> {
  const m = snapshot.manifest;
  let runId: string | undefined;
  // Only a killed, non-isolated process dumped with the lock leaves one in the host's namespace
  // (an isolated job's lock table is dealt with by the isolate layer).
  if (m.kind !== 'job' && m.crs.name === 'criu' && m.endState === 'terminate' && m.process.networkLock !== 'skip' && !m.process.isolation) {
    runId = dumpRunId(snapshotPath(snapshot, 'images'));
  }
  removeSnapshot(snapshot);
  const removed = runId !== undefined && (await removeLockTable(runId));
  return { dir: snapshot.dir, ...(removed ? { lockTable: lockTableName(runId!) } : {}) };
}
