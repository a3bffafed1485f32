// Retention (`--keep K`): the newest K committed snapshots of one owner — a job by
// name, an isolated job, a process — stay in a store, its older ones go. The same
// rule for every kind of periodic checkpoint; what a snapshot belongs to is the
// caller's predicate on its manifest.
import { CkptError } from '../errors.js';
import type { Manifest } from './manifest.js';
import { listSnapshots, openSnapshot } from './read.js';
import { removeSnapshot } from './write.js';

/**
 * Keeps the newest `keep` committed snapshots whose manifest `belongs` and removes
 * the older ones; returns the seqs removed. Anything else in the store — another
 * owner's snapshots, one whose manifest cannot be read — is neither counted nor
 * ever removed; a snapshot that cannot be removed (gone meanwhile) is skipped.
 */
export function keepNewest(store: string, keep: number, belongs: (m: Manifest) => boolean): number[] {
  if (!(keep >= 1)) return [];
  const owned = listSnapshots(store).filter((s) => s.manifest !== undefined && belongs(s.manifest));
  const removed: number[] = [];
  for (const s of owned.slice(0, Math.max(0, owned.length - keep))) {
    try {
      removeSnapshot(openSnapshot(s.dir));
      removed.push(s.seq);
    } catch (err) {
      if (!(err instanceof CkptError)) throw err;
    }
  }
  return removed;
}
