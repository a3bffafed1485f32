// The self checkpointer's coordinator half (docs/RUNTIME.md, "self"):
//   prepare → reach (every rank at the same safe point) → save (drain and save in
//   one round) → the cut: small ranks' states packed into one file.
import type { RankRecord } from '../../store/manifest.js';
import { packStates, PACK_FILE } from '../../store/pack.js';
import { version } from '../../version.js';
import { parse } from '../../wire/validate.js';
import { prepareReply, reachReply, saveReply, type SaveReply } from '../../wire/messages.js';
import { rankDirName, syncedFiles } from '../job-files.js';
import type { JobCheckpointAttempt, JobCheckpointRun, JobCut } from '../job.js';
import { envNumber } from '../../config.js';

export function beginSelfCheckpoint(run: JobCheckpointRun): JobCheckpointAttempt {
  return {
    cut: () => cut(run),
    // Nothing of a self rank goes down: every rank resumes as it was.
    abandon: async () => ({ fatal: false }),
  };
}

async function cut(run: JobCheckpointRun): Promise<JobCut> {
  const { ranks, pending } = run;
  await run.phase('prepare');
  const prepared = await run.all('ckpt-prepare', () => ({ seq: pending.seq, store: pending.store, dir: pending.finalDir, requested: run.requested }));
  const counts = prepared.map((m, r) => parse(prepareReply, m, `rank ${r}'s ckpt-prepare reply`).safePoints ?? 0);
  const target = Math.max(...counts) + 1;

  await run.phase('reach');
  // A rank reports, unasked, the first safe point it stands at after the prepare.
  // Ranks whose next safe point is the target need not be told it (in a job whose
  // ranks keep in step, none are): their report answers for them, and the save
  // request confirms it. The others are sent on to the target, and reply when there.
  // One round, one message per node each way: a node's agent keeps its ranks'
  // reports for it. Not folded into the prepare's round: a rank behind waits at its
  // next safe point, sends held, until told the target, and the target needs every
  // rank's count — a node's reply that waited for its ranks' reports could wait for
  // a rank that needs a message from a rank held elsewhere.
  const written = (await run.all('ckpt-reach', () => ({ target }), run.reachMs, (r) => (counts[r]! + 1 === target ? target : undefined))).map(
    (m, r) => parse(reachReply, m, `rank ${r}'s ckpt-reach reply`).written,
  );

  await run.phase('save');
  const inlineBytes = envNumber('CKPT_SELF_INLINE_BYTES');
  // Drain and save in one round: rank j saves once it has read, from each i, what i wrote to j.
  const saved: SaveReply[] = (
    await run.all('ckpt-save', (j) => ({
      target,
      expected: ranks.map((i) => written[i]?.[j] ?? 0),
      rankDir: run.rankDir(j),
      inlineBytes,
    }))
  ).map((m, r) => parse(saveReply, m, `rank ${r}'s ckpt-save reply`));

  await run.phase('commit');
  // Small ranks replied with their state: one pack file for all of them (one fsync
  // instead of one per rank: 16 ranks fsyncing at once took ~25 ms here), made
  // durable by the commit, together with the manifest.
  const inline = ranks.flatMap((r) => {
    const i = saved[r]!.inline;
    return i ? [{ rank: r, state: Buffer.from(i.state, 'base64'), binary: i.binary, library: Buffer.from(i.library, 'base64') }] : [];
  });
  const synced = ranks.flatMap((r) => syncedFiles(r, saved[r]!.files));
  const pack = inline.length ? packStates(inline) : undefined;
  if (pack) synced.push(await run.writer.writeFile(PACK_FILE, pack.bytes));
  const rankRecords = ranks.map((r): RankRecord => {
    const packed = pack?.packed.get(r);
    return { rank: r, pid: run.pids[r] ?? 0, dir: rankDirName(r), safePoint: saved[r]!.safePoint, ...(packed ? { packed } : {}) };
  });
  return {
    ranks: rankRecords,
    version,
    // Each rank's local snapshot (save(), and its files written and fsynced unless packed), as it timed it,
    // and its program's own way to the target safe point (the rest of the pause is coordination).
    data: { target, saveMs: saved.map((s) => s.saveMs ?? null), reachMs: saved.map((s) => s.reachMs ?? null) },
    synced,
    syncedDirs: ranks.filter((r) => !pack?.packed.has(r)).map(rankDirName),
  };
}
