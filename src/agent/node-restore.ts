// What an agent does with the job's files on its node: restores its ranks of a
// criu snapshot (read from the shared store, checked as any snapshot is), and
// reads the coordinator's probe to tell whether the store is shared (and --stage's
// directory usable here).
import { CkptError, ErrorCodes } from '../errors.js';
import { jobCheckpointer, isJobCheckpointer } from '../crs/job-registry.js';
import { restoredRank } from '../runtime/rankproc.js';
import { beginVerification, isJobSnapshot, openSnapshot } from '../store/store.js';
import { restartIdentity } from '../store/trust.js';
import { stageDirProblem } from '../store/stage.js';
import { sweepDeadStaged } from '../store/stage-sweep.js';
import { readAccepted } from '../util/dirfd.js';
import type { RestoreRanks } from '../wire/agent-messages.js';
import type { NodeRanks } from './node-ranks.js';

/** Restores ranks `m.ranks` here: they rejoin through this node's agent (`here.coord`) and listen on its address. */
export async function restoreHere(m: RestoreRanks, ranks: NodeRanks, here: { coord: string; peerHost: string }): Promise<void> {
  const snapshot = openSnapshot(m.snapshot);
  if (!isJobSnapshot(snapshot)) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${m.snapshot} is not a job snapshot`);
  // Never more privilege than the snapshot's owner had (the coordinator checked too: this is another host).
  restartIdentity(snapshot.owner, snapshot.dir, 'job');
  const crs = snapshot.manifest.crs.name;
  const component = isJobCheckpointer(crs) ? jobCheckpointer(crs) : undefined;
  if (!component?.restoreRanks) throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `${snapshot.dir}: '${crs}' does not restore ranks`);
  snapshot.manifest.ranks.forEach((r, i) => component.validateRank(r, `ranks[${i}]`));
  // This node's ranks' files are verified here while CRIU restores them (held until they matched).
  const dirs = m.ranks.map((r) => `${snapshot.manifest.ranks[r]?.dir}/`);
  const verification = beginVerification(snapshot, (path) => dirs.some((d) => path.startsWith(d)));
  await component.restoreRanks(snapshot, {
    ranks: m.ranks,
    verification,
    rejoin: { ...m.rejoin, ...here },
    onRestored: (rank, pid, stdout, stderr) => ranks.restored(rank, restoredRank(pid, stdout, stderr)),
  });
}

/**
 * Whether `path` holds `token` here; and whether `stage` (--stage DIR) can be used here
 * (if so, what agents or coordinators that died here left staged in it goes first:
 * store/stage-sweep.ts).
 */
export async function probeStoreHere(path: string, token: string, stage?: string): Promise<{ seen: 'yes' | 'no'; message?: string; stageProblem?: string }> {
  const problem = stage === undefined ? undefined : stageDirProblem(stage);
  if (stage !== undefined && problem === undefined) await sweepDeadStaged(stage);
  const more = problem ? { stageProblem: problem } : {};
  try {
    // Not through a link, never blocked on a FIFO, never endless (a link to /dev/zero): another user may have put it there.
    const text = readAccepted(path, (st) => st.isFile() && st.size === Buffer.byteLength(token));
    return text === token ? { seen: 'yes', ...more } : { seen: 'no', message: 'another file of that name is there', ...more };
  } catch (err) {
    return { seen: 'no', message: (err as NodeJS.ErrnoException).code ?? (err as Error).message, ...more };
  }
}
