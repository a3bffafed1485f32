// --stage DIR on the coordinator's side: where each criu rank of a checkpoint dumps
// (DIR/<job>/<seq>/rank-N on its own node), and, once every rank has dumped, the
// copy of their images into the pending snapshot — by each node's agent, in parallel
// across nodes, or here for a job on one host — before the commit. The ranks of a
// checkpoint that continues are released before the copy (runtime/checkpoint.ts).
import type { FileEntry } from '../store/checksum.js';
import { stagedRankDir } from '../store/stage.js';
import { rankDirName, syncedFiles } from '../crs/job-files.js';
import { CkptError, ErrorCodes } from '../errors.js';
import { heldTagNow } from '../util/writer-beacon.js';
import { copyStagedHere, type StageItem } from './stage-copy.js';
import type { RankStarter } from './starter.js';

export interface Staging {
  /** The stage directory (absolute; checked on every node at the job's start). */
  dir: string;
  /** Who copies and removes rank r's staged images (its node's agent, or this process): named in its checkpoint's directory. */
  writer(rank: number): string | undefined;
  /** Copies (or with `discard` removes) staged ranks: the starter's agents, else here. */
  copy(items: StageItem[], discard: boolean, timeoutMs: number): Promise<{ rank: number; files: FileEntry[] }[]>;
}

/** The staging of a job whose ranks `starter` runs. */
export function staging(dir: string, starter: RankStarter): Staging {
  // This process's tag, its beacon held since the job's start (launcher.ts).
  const here = heldTagNow();
  return {
    dir,
    writer: (r) => (starter.stageWriter ? starter.stageWriter(r) : here),
    copy: (items, discard, timeoutMs) =>
      starter.stageCopy ? starter.stageCopy(items, discard, timeoutMs, dir) : copyStagedHere({ items, stage: dir, ...(discard ? { discard } : {}) }),
  };
}

/** Where rank r of checkpoint `seq` dumps. */
export const stagedDir = (s: Staging, jobId: string, seq: number, rank: number): string => stagedRankDir(s.dir, jobId, seq, rankDirName(rank), s.writer(rank));

/**
 * Copies every rank's staged images into `into(r)` (its directory in the pending
 * snapshot): the files (relative to the snapshot, fsynced and checksummed where they
 * now are) and the directories the commit syncs once.
 */
export async function collectStaged(
  s: Staging,
  jobId: string,
  seq: number,
  ranks: readonly number[],
  into: (rank: number) => string,
  timeoutMs: number,
): Promise<{ synced: FileEntry[]; syncedDirs: string[] }> {
  const copied = await s.copy(
    ranks.map((r) => ({ rank: r, from: stagedDir(s, jobId, seq, r), to: into(r) })),
    false,
    timeoutMs,
  );
  const missing = ranks.filter((r) => !copied.some((c) => c.rank === r));
  if (missing.length) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `no copy of the staged images of rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  // As files a rank reports it synced: anything malformed is left out, and the commit hashes it again.
  const synced = copied.flatMap((c) => syncedFiles(c.rank, c.files));
  return { synced, syncedDirs: ranks.flatMap((r) => [rankDirName(r), `${rankDirName(r)}/images`]) };
}

/** Removes what a failed checkpoint left staged on the nodes. Never throws. */
export async function discardStagedRanks(s: Staging, jobId: string, seq: number, ranks: readonly number[], timeoutMs: number): Promise<void> {
  await s.copy(ranks.map((r) => ({ rank: r, from: stagedDir(s, jobId, seq, r), to: '' })), true, timeoutMs).catch(() => {});
}
