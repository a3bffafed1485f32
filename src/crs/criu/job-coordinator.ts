// The criu checkpointer's coordinator half (docs/RUNTIME.md, "criu"):
//   dump (each rank begins, holds its sends, drains by markers with its peers,
//   leaves the job, CRIU dumps it, it rejoins) → the cut; a prepare round first only
//   when not every rank can (beforeTheDump). A rank that went down and never came
//   back leaves the job unable to go on: abandon() says so (`fatal`).
import { randomInt } from 'node:crypto';
import { JobError, ErrorCodes } from '../../errors.js';
import { envNumber } from '../../config.js';
import { parse, type Checked } from '../../wire/validate.js';
import { rejoinHello, type RejoinHello } from '../../wire/messages.js';
import { mkdirPrivate } from '../../util/fsx.js';
import { rankDirName, syncedFiles } from '../job-files.js';
import type { JobCheckpointAttempt, JobCheckpointRun, JobCut } from '../job.js';
import { criuDumpReply, criuPrepareReply, type CriuPrepareReply } from './job-messages.js';

/** How many ranks CRIU dumps at once (`CKPT_DUMP_CONCURRENCY`; default: all). */
function dumpConcurrency(): number {
  return Math.max(1, envNumber('CKPT_DUMP_CONCURRENCY') ?? Infinity);
}

export function beginCriuCheckpoint(run: JobCheckpointRun): JobCheckpointAttempt {
  /** Ranks that went down for their dump, and their way back. */
  const down = new Map<number, Promise<Record<string, unknown>>>();
  return {
    cut: () => cut(run, down),
    async abandon() {
      // Ranks that went down must be back (their images written) before anyone can reconnect.
      const back = await Promise.allSettled([...down.values()]);
      let fatal = back.some((b) => b.status === 'rejected');
      // Ranks left frozen by their dump (a checkpoint that was to end the job) go on:
      // woken, each rejoins as after any dump.
      const frozen = [...down.keys()].filter((_, i) => {
        const b = back[i]!;
        return b.status === 'fulfilled' && b.value.stopped === true;
      });
      const woken = await Promise.allSettled(
        frozen.map((r) => {
          const again = run.awaitRejoin(r, run.dumpMs);
          run.signalRank(r, 'SIGCONT');
          return again;
        }),
      );
      fatal ||= woken.some((b) => b.status === 'rejected');
      return { fatal, resume: { peers: run.peerAddresses() } };
    },
  };
}

async function cut(run: JobCheckpointRun, down: Map<number, Promise<Record<string, unknown>>>): Promise<JobCut> {
  const { ranks, pending } = run;
  const { prepared, extra } = await beforeTheDump(run);
  await run.phase('dump');
  // Each rank makes its own directory, all at once (one by one here took 0.3–0.7 ms
  // at 2 ranks under load): not a staged one's, which its copy needs here, nor one of
  // an older ckpt (a prepare round came first), which expects it made.
  if (run.staged || prepared) for (const r of ranks) mkdirPrivate(`${pending.dir}/${rankDirName(r)}`);
  const { hellos, described } = await dumpAll(run, down, extra);
  const frozen = ranks.filter((r) => hellos.get(r)?.stopped === true);
  // A frozen rank could not make its images durable nor checksum them: the commit does.
  // Staged ranks did neither: their copies into the snapshot are (runtime/checkpoint.ts).
  const synced = run.staged ? [] : ranks.filter((r) => hellos.get(r)?.files !== undefined);

  await run.phase('commit');
  const reported = new Map(synced.map((r) => [r, syncedFiles(r, hellos.get(r)?.files)]));
  const { criuBinary } = await import('./index.js');
  const { version } = await criuBinary();
  return {
    ranks: ranks.map((r) => {
      // The rank's process as its report after the dump described it (its dump reply, when left frozen; its prepare reply, from a rank of an older ckpt).
      const p = { ...prepared?.[r], ...described.get(r) };
      if (p.pid === undefined) throw new JobError(ErrorCodes.CHECKPOINT_FAILED, `rank ${r} did not say which process CRIU dumped`);
      // The rest is checked with the whole record (JobCheckpointer.validateRank), as a restart checks it.
      return {
        rank: r,
        pid: p.pid,
        dir: rankDirName(r),
        tree: p.tree ?? [],
        stdio: p.stdio ?? [],
        rejoin: p.rejoin ?? '',
        shellJob: p.shellJob === true,
        networkLock: p.networkLock === 'skip' ? 'skip' : 'nftables',
        ...(p.control !== undefined ? { control: p.control } : {}),
      };
    }),
    version: `${version.major}.${version.minor}.${version.sublevel}`,
    // How long each rank's own CRIU dump took (its local snapshot), as the rank timed it.
    // Of it, the fsync and checksum of its images (none when staged or frozen: the copy or the commit did them).
    // When each dump ended by its node's clock (ms since the epoch): the dumps of one node side by side.
    data: {
      images: 'images',
      dumpMs: ranks.map((r) => hellos.get(r)?.dumpMs ?? null),
      syncMs: ranks.map((r) => hellos.get(r)?.syncMs ?? null),
      dumpEndAt: ranks.map((r) => hellos.get(r)?.dumpEndAt ?? null),
    },
    synced: [...reported.values()].flat(),
    syncedDirs: synced.flatMap((r) => [rankDirName(r), `${rankDirName(r)}/images`]),
    // A rank lists its whole directory itself to sync it: the commit does not list it again (24
    // directories at 3 × 8: 2.7 ms of the commit under load), unless an entry was malformed.
    completeDirs: synced.filter((r) => reported.get(r)!.length === (hellos.get(r)?.files?.length ?? -1)).map(rankDirName),
    resume: { peers: run.peerAddresses() },
    ...(frozen.length ? { frozen } : {}),
  };
}

/**
 * What comes before the dump requests, and what each carries beyond the rank's
 * directory. In one round (DMTCP's drain cookies): each rank begins the checkpoint at
 * its dump request (`begin`), holds its sends, and drains by markers with its peers;
 * this needs every rank asked at once (each waits for all its peers' markers) and
 * able to (its hello said so: not one restored from an older ckpt's snapshot).
 * Otherwise a prepare round (sends held, counts written) and the drain by counts,
 * folded into the dump request where every rank can.
 */
async function beforeTheDump(run: JobCheckpointRun): Promise<{ prepared?: CriuPrepareReply[]; extra: (r: number) => Record<string, unknown> }> {
  const { ranks, pending } = run;
  const begin = { crs: 'criu', seq: pending.seq, store: pending.store, dir: pending.finalDir, requested: run.requested };
  if (run.markerDrain && dumpConcurrency() >= ranks.length) {
    // Never reused (a snapshot's seq is, after an abort): a stale marker cannot pass for a fresh one.
    const marker = randomInt(1, 2 ** 47);
    return { extra: () => ({ begin, marker }) };
  }
  await run.phase('prepare');
  const prepared = (await run.all('ckpt-prepare', () => begin)).map((m, r) => parse(criuPrepareReply, m, `rank ${r}'s ckpt-prepare reply`));
  const expected = (j: number) => ranks.map((i) => prepared[i]!.written[j] ?? 0);
  // Ranks that drain at their dump request are spared a round (each drains, runs its
  // hooks and goes down on its own: nothing it reads can come from a rank gone down
  // before it, whose sends were held and flushed). Otherwise the drain is a round of its own.
  const folded = prepared.every((p) => p.drainAtDump === true);
  if (folded) return { prepared, extra: (r) => ({ expected: expected(r) }) };
  await run.phase('drain');
  await run.all('ckpt-drain', (j) => ({ expected: expected(j) }));
  return { prepared, extra: () => ({}) };
}

/**
 * All ranks at once by default; CKPT_DUMP_CONCURRENCY=K dumps K at a time (bounds
 * the CRIU processes' memory and CPU for a large job; measured at N = 16 on 2
 * cores the whole checkpoint took about as long either way, 2.2–2.5 s). A rank
 * waiting for its turn runs on: its sends are held and nothing is in flight to
 * it, so the cut stays consistent. After a failure no further rank goes down.
 */
async function dumpAll(
  run: JobCheckpointRun,
  down: Map<number, Promise<Record<string, unknown>>>,
  extra: (r: number) => Record<string, unknown>,
): Promise<{ hellos: Map<number, RejoinHello>; described: Map<number, Checked<typeof criuDumpReply>> }> {
  const hellos = new Map<number, RejoinHello>();
  const described = new Map<number, Checked<typeof criuDumpReply>>();
  const queue = [...run.ranks];
  /** A rank that refused, never answered, or did not come back; `stop`: no further dumps. */
  let failure: unknown;
  let stop = false;
  // A checkpoint that ends the job: the rank stays frozen after its dump (killed after the commit).
  const body = (r: number) => ({ rankDir: run.rankDir(r), ...(run.then === 'terminate' ? { leaveStopped: true } : {}), ...(run.staged ? { staged: true } : {}), ...extra(r) });
  const awaitBack = (r: number) => {
    const back = run.awaitRejoin(r, run.dumpMs);
    back.catch(() => {});
    return back;
  };
  let ask = (r: number) => run.request(r, 'ckpt-dump', body(r));
  const backs = new Map<number, Promise<Record<string, unknown>>>();
  if (dumpConcurrency() >= run.ranks.length) {
    // All at once (the default): one request per node, through its agent, not one per rank.
    for (const r of run.ranks) backs.set(r, awaitBack(r));
    const round = run.allSettled('ckpt-dump', body);
    ask = async (r) => {
      const x = (await round)[run.ranks.indexOf(r)]!;
      if (x instanceof Error) throw x;
      return x;
    };
  }
  const worker = async (): Promise<void> => {
    while (!stop && queue.length > 0) {
      const r = queue.shift()!;
      const back = backs.get(r) ?? awaitBack(r);
      let reply: Record<string, unknown>;
      try {
        reply = await ask(r);
      } catch (err) {
        // It did not go down (it refused, or never answered): nobody waits for it.
        failure ??= err;
        stop = true;
        return;
      }
      down.set(r, back);
      try {
        described.set(r, parse(criuDumpReply, reply, `rank ${r}'s ckpt-dump reply`));
      } catch (err) {
        // It went down all the same: it is waited for, and no further rank goes down.
        failure ??= err;
        stop = true;
      }
      try {
        const hello = parse(rejoinHello, await back, `rank ${r}'s rejoin after its dump`);
        hellos.set(r, hello);
        // Its process as CRIU wrote it: said after the dump by a rank that was not left frozen.
        if (hello.process !== undefined) described.set(r, { ...described.get(r), ...parse(criuDumpReply, hello.process, `rank ${r}'s process after its dump`) });
        if (hello.dumped !== 'ok') stop = true;
      } catch (err) {
        failure ??= err;
        stop = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(dumpConcurrency(), run.ranks.length) }, worker));
  if (failure !== undefined) throw failure;
  const failed = [...hellos.keys()].filter((r) => hellos.get(r)?.dumped !== 'ok');
  if (failed.length) {
    throw new JobError(ErrorCodes.CHECKPOINT_FAILED, failed.map((r) => `rank ${r}: ${hellos.get(r)?.message ?? 'dump failed'}`).join('; '), {
      details: { ranks: failed },
    });
  }
  return { hellos, described };
}
