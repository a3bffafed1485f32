// The self checkpointer for jobs: its coordinator half, rank half and rank record.
import { SnapshotError, ErrorCodes } from '../../errors.js';
import { version } from '../../version.js';
import { lazyAttempt, type JobCheckpointer } from '../job.js';
import { selfRankHalf } from './job-rank.js';

export const selfJobCheckpointer: JobCheckpointer = {
  name: 'self',
  begin: (run) => lazyAttempt(async () => (await import('./job-coordinator.js')).beginSelfCheckpoint(run)),
  rank: selfRankHalf,
  probe: async () => ({ version }),
  validateRank(r, where) {
    // `packed` (a small rank's slices of ranks.pack) is checked against the files by store/manifest.ts.
    if (r.safePoint !== undefined && !Number.isSafeInteger(r.safePoint)) throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `invalid manifest: ${where}.safePoint`);
  },
};
