// The coordinator's side of a job checkpoint, whatever the checkpointer: a new
// partial snapshot, the component's phases up to its cut (crs/self, crs/criu:
// JobCheckpointer.begin), the commit (the one global manifest, atomically), then
// every rank resumes — not waited for. Any failure before the commit aborts: the
// ranks resume as if nothing had happened and the partial snapshot is removed.
// The protocol: docs/RUNTIME.md.
import { hostname } from 'node:os';
import { ErrorCodes, JobError, throwIfInterrupted } from '../errors.js';
import type { JobCheckpointRun, JobPhase } from '../crs/job.js';
import { FALLBACK_JOB_CHECKPOINTER, jobCheckpointer } from '../crs/job-registry.js';
import { rankDirName } from '../crs/job-files.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type EndState, type JobRecord as JobManifestRecord } from '../store/manifest.js';
import { recordEnv, type RecordedEnv } from '../store/env.js';
import { abortSnapshot, beginSnapshot, commitSnapshot, type PendingSnapshot, type Snapshot } from '../store/store.js';
import { keepNewest } from '../store/retention.js';
import type { SnapshotReserve } from '../store/reserve.js';
import { pendingWriter } from '../store/writer.js';
import { version } from '../version.js';
import { envNumber } from '../config.js';
import { faultPoint } from '../util/faults.js';
import type { Coordinator } from './coordinator.js';
import type { RankProgress } from './job-checkpoint.js';
import { ImageWatcher } from '../store/image-watcher.js';
import { privateResidentBytes } from '../util/memory.js';
import { collectStaged, discardStagedRanks, stagedDir, type Staging } from './staging.js';

const ms = (t: number) => Math.round(t * 10) / 10;

export type CheckpointPhase = JobPhase;

export interface JobCheckpointOptions {
  coordinator: Coordinator;
  store: string;
  then: EndState;
  job: JobManifestRecord;
  pids: number[];
  /** Each rank's node, when ranks run on other nodes (they then write into the store by its path). */
  nodes?: string[];
  /** The job's checkpointer, by name (default self). */
  crs?: string;
  /** A rank asked for it (comm.checkpoint()): ranks match it to their calls. */
  requested?: boolean;
  /** Timeout of each phase; `reach` waits for the ranks' next safe point and gets `reachMs`; `dump` (criu) gets `dumpMs`. */
  phaseMs?: number;
  reachMs?: number;
  dumpMs?: number;
  onPhase?: (phase: CheckpointPhase) => void;
  /** The job's next snapshot directory, made ahead (store/reserve.ts): taken instead of a new one if still good. */
  reserve?: SnapshotReserve;
  /** The snapshot is committed; called before the ranks are told to go on (see CheckpointRequest.onCommitted). */
  onCommitted?: (snapshot: Snapshot) => void;
  /** Aborted (the `ckpt checkpoint JOB` that asked was interrupted): given up at the next phase or before the commit. */
  signal?: AbortSignal;
  onProgress?: (progress: RankProgress) => void;
  /** A signal to one rank (criu: frozen ranks are killed after a terminate commit, or continued after a failed one). */
  signalRank?: (rank: number, signal: NodeJS.Signals) => void;
  /** Called once a checkpoint that ends the job is committed, before any rank is told or killed. */
  ending?: () => void;
  /** --stage (criu only; self ignores it): ranks dump on their node's disk, copied into the store after the cut. */
  stage?: Staging;
}

/** Environment variables that belong to one run of a job, never to its snapshot. */
const RUN_ONLY_ENV = /^CKPT_(JOB_ID|JOB_SECRET|COORD|RANK|SIZE|RESTART_SNAPSHOT|FAULT|FAULT_DIR|PEER_HOST)$/;

/** This coordinator's host, asked once: each call in the pause cost 0.6 ms after an idle on the test VM (bench/idle.mjs). */
let coordinatorHost: string | undefined;

export function jobEnvForSnapshot(env: NodeJS.ProcessEnv): RecordedEnv {
  return recordEnv(env, (k) => RUN_ONLY_ENV.test(k));
}

export async function coordinateCheckpoint(o: JobCheckpointOptions): Promise<Snapshot> {
  const c = o.coordinator;
  const component = jobCheckpointer(o.crs ?? FALLBACK_JOB_CHECKPOINTER);
  if (!c.allConnected) throw new JobError(ErrorCodes.CHECKPOINT_FAILED, 'the job cannot be checkpointed now: not every rank is connected (starting, finishing or failed)');
  const ranks = [...Array(o.job.size).keys()];
  const phaseMs = o.phaseMs ?? envNumber('CKPT_CHECKPOINT_PHASE_MS');
  const pending = o.reserve ? o.reserve.take(o.store, component.name) : beginSnapshot(o.store);
  const createdAt = new Date().toISOString();
  let phase = 'prepare' as CheckpointPhase;
  const stage = component.name === 'criu' ? o.stage : undefined;
  /** When the first rank was told to go down (the dump phase): --stage records how long until the release (data.pauseMs). */
  let downAt = 0;
  const run: JobCheckpointRun = {
    jobId: o.job.id,
    ranks,
    pids: o.pids,
    pending,
    requested: o.requested === true,
    then: o.then,
    signalRank: (r, signal) => o.signalRank?.(r, signal),
    phaseMs,
    reachMs: o.reachMs ?? envNumber('CKPT_CHECKPOINT_REACH_MS'),
    dumpMs: o.dumpMs ?? envNumber('CKPT_CHECKPOINT_DUMP_MS') ?? Math.max(phaseMs, 120_000),
    async phase(name) {
      // Past the commit nothing is given up.
      if (name !== 'resume') throwIfInterrupted(o.signal);
      phase = name;
      if (name === 'dump') downAt = performance.now();
      o.onPhase?.(name);
      await faultPoint(name, 'coord');
    },
    request: (r, op, body = {}, timeoutMs = phaseMs) => c.requestRank(r, op, timeoutMs, body),
    // Ranks on other nodes: one message per node each way (Coordinator.requestAll).
    all: (op, body, timeoutMs = phaseMs, reportedAt) =>
      c.requestAll(ranks, op, body, timeoutMs, (r) => {
        const safePoint = reportedAt?.(r);
        return safePoint === undefined ? undefined : { seq: pending.seq, safePoint };
      }),
    allSettled: (op, body, timeoutMs = phaseMs) => c.requestAllSettled(ranks, op, body, timeoutMs),
    awaitRejoin: (r, timeoutMs) => c.awaitRejoin(r, timeoutMs),
    peerAddresses: () => c.peerAddresses(),
    writer: pendingWriter(pending),
    rankDir: (r) => (stage ? stagedDir(stage, o.job.id, pending.seq, r) : inSnapshot(r)),
    staged: stage !== undefined,
    markerDrain: c.markerDrain,
  };
  const inSnapshot = (r: number) => `${o.nodes ? pending.path : pending.dir}/${rankDirName(r)}`;
  const attempt = component.begin(run);
  const watchers = stage ? [] : watchRanks(o, component.name, pending, ranks);
  /** --stage and a checkpoint that continues: the ranks go on before the copy and the commit. */
  let released = false;
  try {
    const cut = await attempt.cut().finally(() => Promise.all(watchers.map((w) => w.close())));
    c.clearArrivals();
    // What the component recorded of each rank, checked as its restart will check it.
    cut.ranks.forEach((r, i) => component.validateRank(r, `ranks[${i}]`));
    const timing: Record<string, number> = {};
    if (stage) {
      // Every rank has dumped (a consistent cut): the job goes on while the nodes copy.
      if (o.then === 'continue') {
        resumeAll(c, ranks, phaseMs, { outcome: 'continue', seq: pending.seq, ...cut.resume });
        released = true;
        timing.pauseMs = ms(performance.now() - downAt);
      }
      const t0 = performance.now();
      const copied = await collectStaged(stage, o.job.id, pending.seq, ranks, inSnapshot, run.dumpMs);
      timing.stageCopyMs = ms(performance.now() - t0);
      cut.synced = copied.synced;
      cut.syncedDirs = copied.syncedDirs;
      cut.completeDirs = undefined;
    }
    const snapshot = await commitSnapshot(
      pending,
      {
        format: MANIFEST_FORMAT,
        version: MANIFEST_VERSION,
        kind: 'job',
        origin: 'coordinated',
        createdAt,
        ckptVersion: version,
        crs: { name: component.name, version: cut.version },
        host: (coordinatorHost ??= hostname()),
        endState: o.then,
        job: o.job,
        ranks: o.nodes ? cut.ranks.map((r) => ({ ...r, node: o.nodes![r.rank] })) : cut.ranks,
        data: { ...cut.data, ...timing },
      },
      // Past the release nothing is given up on the caller's word: the copy is done, the commit is what is left.
      { synced: cut.synced, syncedDirs: cut.syncedDirs, completeDirs: cut.completeDirs, signal: released ? undefined : o.signal },
    );
    await run.phase('resume');
    answerCaller(o, snapshot);
    if (released) return snapshot;
    if (o.then === 'terminate') endAtSnapshot(c, ranks, phaseMs, o, cut.frozen ?? [], { seq: snapshot.seq, ...cut.resume });
    else resumeAll(c, ranks, phaseMs, { outcome: 'continue', seq: snapshot.seq, ...cut.resume });
    return snapshot;
  } catch (err) {
    c.clearArrivals();
    let fatal = false;
    let leftover: string | undefined;
    if (released) {
      // The ranks went on already: only the partial snapshot goes (the nodes removed their staged copies).
      leftover = await abortCheckpoint(c, [], pending, 0, {});
    } else if (phase !== 'resume') {
      const after = await attempt.abandon();
      if (stage) await discardStagedRanks(stage, o.job.id, pending.seq, ranks, phaseMs);
      fatal = after.fatal;
      // A job that cannot go on is not told to resume (it is aborted); the snapshot goes all the same.
      leftover = fatal ? await abortCheckpoint(c, [], pending, 0, {}) : await abortCheckpoint(c, ranks, pending, abortMs(phaseMs), { outcome: 'abort', ...after.resume });
    }
    const cause = err instanceof Error ? err.message : String(err);
    throw new JobError(ErrorCodes.CHECKPOINT_FAILED, `checkpoint of job ${o.job.id} failed in phase ${phase}: ${cause}${leftover ? `; ${leftover}` : ''}`, {
      cause: err,
      details: { phase, fatal },
      hint: fatal
        ? 'a rank went down for its CRIU dump and did not come back: the job cannot go on'
        : phase === 'reach'
          ? 'with the self checkpointer every rank must call comm.safePoint() now and then'
          : undefined,
    });
  }
}

/** Progress of each criu rank's images (what each writes, watched through the pending snapshot's descriptor). */
function watchRanks(o: JobCheckpointOptions, crs: string, pending: PendingSnapshot, ranks: number[]): ImageWatcher[] {
  const dir = pending.handles?.dir;
  if (!o.onProgress || crs !== 'criu' || !dir) return [];
  const onProgress = o.onProgress;
  return ranks.map((rank) => {
    const expected = o.nodes ? 0 : privateResidentBytes([o.pids[rank] ?? 0].filter((p) => p > 1));
    return new ImageWatcher({
      dir,
      sub: `${rankDirName(rank)}/images`,
      overlap: false,
      intervalMs: 200,
      ...(expected > 0 ? { expectedBytes: expected } : {}),
      onProgress: (p) => onProgress({ rank, ...p }),
    });
  });
}

/**
 * The caller hears of the commit before the ranks are told to go on: ranks that wake
 * up on the caller's node (8 per node on 2 cores) held its CPU for 8–14 ms before it
 * could answer. What it does with the news is its own affair: it cannot fail the
 * checkpoint, which is committed.
 */
function answerCaller(o: JobCheckpointOptions, snapshot: Snapshot): void {
  try {
    o.onCommitted?.(snapshot);
  } catch {
    // the caller's failure, not the checkpoint's
  }
}

/** How long an abort waits for each rank to answer its ckpt-resume (at least 5 s; the phase timeout if longer). */
function abortMs(phaseMs: number): number {
  return Math.max(5000, phaseMs);
}

/**
 * Ends an aborted checkpoint: every rank is sent `ckpt-resume` (abort) and the
 * partial snapshot is removed only once each rank has answered — a rank answers
 * once none of its requests can still write into the snapshot (a save() under
 * way is waited for and then writes nothing) — or is gone (not connected, or its
 * connection closed), or has not answered within `timeoutMs`. So nothing is
 * written into a removed directory, and no rank is left with a pending
 * checkpoint that would refuse the next one. Never throws: a directory that
 * cannot be removed is left (partial directories are never listed or restored)
 * and described in the returned text.
 */
async function abortCheckpoint(c: Coordinator, ranks: number[], pending: PendingSnapshot, timeoutMs: number, body: Record<string, unknown>): Promise<string | undefined> {
  await Promise.allSettled(ranks.map((r) => c.requestRank(r, 'ckpt-resume', timeoutMs, body)));
  let last: unknown;
  // A rank that did not answer in time may still be closing a file in it (ENOTEMPTY): a few tries.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      abortSnapshot(pending);
      return undefined;
    } catch (err) {
      last = err;
    }
  }
  return `the partial snapshot ${pending.dir} could not be removed: ${last instanceof Error ? last.message : String(last)}`;
}

/**
 * The snapshot is committed: the ranks are told to go on, and the checkpoint is
 * reported without waiting for their replies (one round less while the caller
 * waits). Each rank's connection is ordered, so a later request finds it resumed;
 * a rank that fails to resume is the job's failure, seen by the launcher as such.
 */
function resumeAll(c: Coordinator, ranks: number[], timeoutMs: number, body: Record<string, unknown>): void {
  c.requestAll(ranks, 'ckpt-resume', () => body, timeoutMs).catch(() => {});
}

/**
 * A committed checkpoint that ends the job: no rank runs past its snapshot. A rank
 * frozen since its dump (criu) is killed as it stands; the others (self, at their
 * safe point) are told `terminate` and exit from there without going back to the
 * program. The job is told first, so that their ends are not taken for failures.
 */
function endAtSnapshot(c: Coordinator, ranks: number[], timeoutMs: number, o: JobCheckpointOptions, frozen: number[], body: Record<string, unknown>): void {
  o.ending?.();
  for (const r of frozen) o.signalRank?.(r, 'SIGKILL');
  const told = ranks.filter((r) => !frozen.includes(r));
  if (told.length) resumeAll(c, told, timeoutMs, { outcome: 'terminate', ...body });
}

/**
 * Keeps the newest `keep` committed snapshots of job `jobName` in a store and removes
 * its older ones (store/retention.ts: another job's, a process's, or one whose
 * manifest cannot be read is never removed).
 */
export function applyRetention(store: string, keep: number, jobName: string): number[] {
  return keepNewest(store, keep, (m) => m.kind === 'job' && m.job.name === jobName);
}

/** A failed criu checkpoint after which the job cannot go on (a rank went down and did not come back). */
export function isFatalCheckpointError(err: unknown): boolean {
  return err instanceof JobError && (err.details as { fatal?: boolean } | undefined)?.fatal === true;
}
