// The criu checkpointer for jobs: its coordinator half, rank half and rank record.
import { SnapshotError, ErrorCodes } from '../../errors.js';
import type { NetworkLockName, RankRecord } from '../../store/manifest.js';
import { lazyAttempt, type JobCheckpointer } from '../job.js';
import { criuRankHalf } from './job-rank.js';

/** A criu rank's record: what its restore needs (validated by validateRank before use). */
export interface CriuRankRecord extends RankRecord {
  /** Every pid of the rank's tree (the restore needs them free). */
  tree: number[];
  /** What fds 0-2 pointed at; a restore hands in new pipes for pipes and sockets. */
  stdio: (string | null)[];
  /** The rank's rejoin pipe (`pipe:[ino]`), through which a restore tells it where its new coordinator is. */
  rejoin: string;
  shellJob?: boolean;
  /** As for a process (ranks have no TCP connections at their dump: `skip`). */
  networkLock?: NetworkLockName;
  /** Its unix connection to the coordinator, kept open across the dump (`socket:[ino]`): the restore hands in a stand-in. */
  control?: string;
}

const pid = (x: unknown) => Number.isSafeInteger(x) && (x as number) > 1;

export const criuJobCheckpointer: JobCheckpointer = {
  name: 'criu',
  begin: (run) => lazyAttempt(async () => (await import('./job-coordinator.js')).beginCriuCheckpoint(run)),
  rank: criuRankHalf,
  // CRIU's client and the restore are loaded when used: every rank imports this
  // registry, and a rank's start-up must not pay for them.
  async probe() {
    const { selectCheckpointer } = await import('../registry.js');
    const { availability } = await selectCheckpointer({ name: 'criu' });
    return { version: availability.version ?? 'unknown' };
  },
  async restoreRanks(snapshot, ctx) {
    const { restoreCriuRanks } = await import('./job-restore.js');
    return restoreCriuRanks(snapshot, ctx);
  },
  validateRank(r, where) {
    const fail = (field: string): never => {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `invalid manifest: ${where}.${field}`);
    };
    // What the restore relies on: every pid it needs free, the stdio it hands over, the rejoin pipe.
    if (!(Array.isArray(r.tree) && r.tree.length > 0 && r.tree.every(pid))) fail('tree');
    if (!(Array.isArray(r.stdio) && r.stdio.length === 3 && r.stdio.every((x) => x === null || typeof x === 'string'))) fail('stdio');
    if (!(typeof r.rejoin === 'string' && /^pipe:\[\d+\]$/.test(r.rejoin))) fail('rejoin');
    if (r.shellJob !== undefined && typeof r.shellJob !== 'boolean') fail('shellJob');
    if (r.networkLock !== undefined && r.networkLock !== 'skip' && r.networkLock !== 'nftables') fail('networkLock');
    if (r.control !== undefined && !(typeof r.control === 'string' && /^socket:\[\d+\]$/.test(r.control))) fail('control');
  },
};
