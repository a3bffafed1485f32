// What a criu snapshot still needs outside itself: CRIU's nftables lock table of a
// dump that killed its process (`--kill` with TCP connections). That table keeps the
// connections' peers from being reset until a restore takes it down; with the
// snapshot gone no restore will, so it goes with the snapshot.
import { dumpRunId } from '../../criu/images.js';
import { lockTableName, removeLockTable } from '../../criu/lock-table.js';
import { snapshotPath, type Snapshot } from '../../store/store.js';

export function lockTableLeftover(snapshot: Snapshot): (() => Promise<string | undefined>) | undefined {
  const m = snapshot.manifest;
  // Only a killed, non-isolated process dumped with the lock leaves one in the host's namespace
  // (an isolated job's lock table is dealt with by the isolate layer).
  if (m.kind === 'job' || m.endState !== 'terminate' || m.process.networkLock === 'skip' || m.process.isolation) return undefined;
  const runId = dumpRunId(snapshotPath(snapshot, 'images'));
  if (runId === undefined) return undefined;
  return async () => ((await removeLockTable(runId)) ? lockTableName(runId) : undefined);
}
