// --stage, the copy: each node's staged ranks go into the pending snapshot on the
// shared store (fsynced and checksummed there), then their staged copies are
// removed. A node agent does it for its node's ranks (agent protocol `stage-copy`);
// for a job on one host the coordinator does it itself. Every rank's copy settles
// before a failure is reported, and the staged copies go either way: a failed copy
// fails the checkpoint, which is then aborted (its partial snapshot removed).
import type { FileEntry } from '../store/checksum.js';
import { copyStaged, discardStaged } from '../store/stage.js';
import { sweepDeadStaged } from '../store/stage-sweep.js';
import { faultPoint } from '../util/faults.js';
import type { StageCopy } from '../wire/agent-messages.js';

export type StageItem = StageCopy['items'][number];

/** Copies (or with `discard` only removes) the staged ranks `m.items` here. */
export async function copyStagedHere(m: StageCopy): Promise<{ rank: number; files: FileEntry[] }[]> {
  // What an agent or coordinator that died here left staged goes first (never a live one's: this copy's writer is alive).
  if (m.stage !== undefined) await sweepDeadStaged(m.stage);
  const settled = await Promise.allSettled(
    m.items.map(async (it) => {
      if (m.discard) return { rank: it.rank, files: [] };
      await faultPoint('staged', it.rank);
      return { rank: it.rank, files: await copyStaged(it.from, it.to) };
    }),
  );
  await Promise.all(m.items.map((it) => discardStaged(it.from)));
  const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [`rank ${m.items[i]!.rank}: ${(s.reason as Error).message}`] : []));
  if (failed.length) throw new Error(`copying the staged images failed: ${failed.join('; ')}`);
  return settled.map((s) => (s as PromiseFulfilledResult<{ rank: number; files: FileEntry[] }>).value);
}
