// Removing a snapshot, and what only it still needed outside it (its checkpointer
// knows: crs/criu/leftovers.ts).
import { checkpointers } from '../crs/registry.js';
import { removeSnapshot, type Snapshot } from '../store/store.js';

export interface RemovedSnapshot {
  dir: string;
  /** The nftables lock table removed with it (`CRIU-…`), if one was left. */
  lockTable?: string;
}

export async function removeSnapshotAndLeftovers(snapshot: Snapshot): Promise<RemovedSnapshot> {
  const component = checkpointers().find((c) => c.name === snapshot.manifest.crs.name);
  const cleanup = component?.prepareRemoval?.(snapshot);
  removeSnapshot(snapshot);
  const lockTable = await cleanup?.();
  return { dir: snapshot.dir, ...(lockTable ? { lockTable } : {}) };
}
