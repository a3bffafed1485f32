// The coordinator's checkpoint state machine:
//   self: prepare → reach (every rank at the same safe point) → save (once nothing
//         is in flight to it, each rank's state into its directory) → commit
//         (global manifest, atomic rename) → resume (continue, not waited for)
//   criu: prepare (sends held at once) → drain → dump (each rank closes its
//         connections, CRIU dumps it, it rejoins) → commit → resume (the ranks
//         reconnect to each other and send what they held; not waited for)
// then the launcher stops or ends the job. Every phase has a timeout; any failure
// aborts the checkpoint — the partial snapshot is removed and the ranks resume as
// if nothing had happened. (criu: a rank that went down for its dump and never
// came back leaves the job unable to go on: the error says so, `fatal`.)
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type EndState, type JobRecord as JobManifestRecord, type ManifestDraft, type RankRecord } from '../store/manifest.js';
import { recordEnv, type RecordedEnv } from '../store/env.js';
import { abortSnapshot, beginSnapshot, commitSnapshot, listSnapshots, removeSnapshot, openSnapshot, writeSnapshotFile, type PendingSnapshot, type Snapshot } from '../store/store.js';
import { mkdirPrivate } from '../util/fsx.js';
import { packStates, PACK_FILE } from '../store/pack.js';
import type { FileEntry } from '../store/checksum.js';
import { version } from '../version.js';
import { faultPoint } from '../util/faults.js';
import type { Coordinator } from './coordinator.js';
import type { ControlMessage } from '../wire/frame.js';

export type CheckpointPhase = 'prepare' | 'reach' | 'drain' | 'save' | 'dump' | 'commit' | 'resume';
export type JobCheckpointer = 'self' | 'criu';

export interface JobCheckpointOptions {
  coordinator: Coordinator;
  store: string;
  then: EndState;
  job: JobManifestRecord;
  pids: number[];
  /** The job's checkpointer (default self); `crsVersion` goes into the manifest. */
  crs?: JobCheckpointer;
  crsVersion?: string;
  /** A rank asked for it (comm.checkpoint()): ranks match it to their calls. */
  requested?: boolean;
  /** Timeout of each phase; `reach` waits for the ranks' next safe point and gets `reachMs`; `dump` (criu) gets `dumpMs`. */
  phaseMs?: number;
  reachMs?: number;
  dumpMs?: number;
  onPhase?: (phase: CheckpointPhase) => void;
}

/** Environment variables that belong to one run of a job, never to its snapshot. */
const RUN_ONLY_ENV = /^CKPT_(JOB_ID|JOB_SECRET|COORD|RANK|SIZE|RESTART_SNAPSHOT|FAULT|FAULT_DIR)$/;

export function jobEnvForSnapshot(env: NodeJS.ProcessEnv): RecordedEnv {
  return recordEnv(env, (k) => RUN_ONLY_ENV.test(k));
}

export function envMs(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** What both checkpointers' state machines start from: the ranks, a new snapshot, request rounds. */
function begin(o: JobCheckpointOptions) {
  const c = o.coordinator;
  const ranks = [...Array(o.job.size).keys()];
  if (!c.allConnected) throw new JobError(ErrorCodes.CHECKPOINT_FAILED, 'the job cannot be checkpointed now: not every rank is connected (starting, finishing or failed)');
  const phaseMs = o.phaseMs ?? envMs('CKPT_CHECKPOINT_PHASE_MS', 30_000);
  const pending = beginSnapshot(o.store);
  /** One request to every rank, all at once; the first failure fails the round. */
  const all = (op: string, timeoutMs: number, body: (r: number) => Record<string, unknown>) =>
    Promise.all(ranks.map((r) => c.requestRank(r, op, timeoutMs, body(r))));
  return { c, ranks, phaseMs, pending, createdAt: new Date().toISOString(), all };
}

function jobManifest(o: JobCheckpointOptions, createdAt: string, crs: { name: string; version: string }, ranks: RankRecord[], data: Record<string, unknown>): ManifestDraft {
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    kind: 'job',
    origin: 'coordinated',
    createdAt,
    ckptVersion: version,
    crs,
    host: hostname(),
    endState: o.then,
    job: o.job,
    ranks,
    data,
  };
}

export async function coordinateCheckpoint(o: JobCheckpointOptions): Promise<Snapshot> {
  if (o.crs === 'criu') return coordinateCriuCheckpoint(o);
  const { c, ranks, phaseMs, pending, createdAt, all } = begin(o);
  const reachMs = o.reachMs ?? envMs('CKPT_CHECKPOINT_REACH_MS', 60_000);
  let phase: CheckpointPhase = 'prepare';
  try {
    o.onPhase?.('prepare');
    await faultPoint('prepare', 'coord');
    const prepared = await all('ckpt-prepare', phaseMs, () => ({ seq: pending.seq, store: pending.store, dir: pending.finalDir, requested: o.requested === true }));
    const counts = prepared.map((m) => Number(m.safePoints));
    const target = Math.max(...counts) + 1;

    phase = 'reach';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    // A rank reports, unasked, the first safe point it stands at after the prepare.
    // Ranks whose next safe point is the target need not be told it (in a job whose
    // ranks keep in step, none are): the save request confirms it. The others are
    // sent on to the target, and reply when there.
    const written = await Promise.all(
      ranks.map((r) =>
        counts[r]! + 1 === target
          ? c.awaitArrival(r, pending.seq, target, reachMs)
          : c.requestRank(r, 'ckpt-reach', reachMs, { target }).then((m) => m.written as number[]),
      ),
    );
    c.clearArrivals();

    phase = 'save';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    const inlineBytes = envBytes('CKPT_SELF_INLINE_BYTES', DEFAULT_INLINE_BYTES);
    // Drain and save in one round: rank j saves once it has read, from each i, what i wrote to j.
    const saved = await all('ckpt-save', phaseMs, (j) => ({
      target,
      expected: ranks.map((i) => written[i]?.[j] ?? 0),
      rankDir: join(pending.dir, `rank-${j}`),
      inlineBytes,
    }));

    phase = 'commit';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    // Small ranks replied with their state: one pack file for all of them.
    const inline = ranks.flatMap((r) => inlineState(r, saved[r]!.inline));
    const synced = ranks.flatMap((r) => syncedFiles(r, saved[r]!.files));
    const pack = inline.length ? packStates(inline) : undefined;
    if (pack) synced.push(await writeSnapshotFile(pending, PACK_FILE, pack.bytes));
    const rankRecords = ranks.map((r): RankRecord => {
      const packed = pack?.packed.get(r);
      return { rank: r, pid: o.pids[r] ?? 0, dir: `rank-${r}`, safePoint: Number(saved[r]!.safePoint), ...(packed ? { packed } : {}) };
    });
    const snapshot = await commitSnapshot(
      pending,
      jobManifest(o, createdAt, { name: 'self', version }, rankRecords, {
        target,
        // Each rank's local snapshot (save(), and its files written and fsynced unless packed), as it timed it.
        saveMs: ranks.map((r) => (typeof saved[r]!.saveMs === 'number' ? saved[r]!.saveMs : null)),
      }),
      { synced, syncedDirs: ranks.filter((r) => !pack?.packed.has(r)).map((r) => `rank-${r}`) },
    );

    phase = 'resume';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    resumeAll(c, ranks, phaseMs, { outcome: 'continue', seq: snapshot.seq });
    return snapshot;
  } catch (err) {
    c.clearArrivals();
    let leftover: string | undefined;
    // The ranks that are still there go on as before; then the partial snapshot goes.
    if (phase !== 'resume') leftover = await abortCheckpoint(c, ranks, pending, abortMs(phaseMs), { outcome: 'abort' });
    const cause = err instanceof Error ? err.message : String(err);
    throw new JobError(ErrorCodes.CHECKPOINT_FAILED, `checkpoint of job ${o.job.id} failed in phase ${phase}: ${cause}${leftover ? `; ${leftover}` : ''}`, {
      cause: err,
      details: { phase },
      hint: phase === 'reach' ? 'with the self checkpointer every rank must call comm.safePoint() now and then' : undefined,
    });
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

/** Up to this many bytes of state (save()'s and the library's), a rank replies with them instead of writing files. */
const DEFAULT_INLINE_BYTES = 64 << 10;
/** Base64 in a control message: 4/3 of it, under the 1 MiB limit with room to spare. */
const MAX_INLINE_BYTES = 512 << 10;

function envBytes(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_INLINE_BYTES) throw new CkptError(ErrorCodes.USAGE, `${name} must be a byte count from 0 to ${MAX_INLINE_BYTES}, not '${v}'`);
  return n;
}

/** A small rank's state from its save reply; malformed: the checkpoint fails. */
function inlineState(rank: number, inline: unknown): { rank: number; state: Buffer; binary: boolean; library: Buffer }[] {
  if (inline === undefined) return [];
  const i = inline as { binary?: unknown; state?: unknown; library?: unknown };
  if (typeof i !== 'object' || i === null || typeof i.binary !== 'boolean' || typeof i.state !== 'string' || typeof i.library !== 'string') {
    throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${rank} replied to ckpt-save with a malformed state`);
  }
  return [{ rank, state: Buffer.from(i.state, 'base64'), binary: i.binary, library: Buffer.from(i.library, 'base64') }];
}

/** What a rank reports it wrote, fsynced and hashed; anything malformed is simply synced and hashed again. */
function syncedFiles(rank: number, files: unknown): FileEntry[] {
  if (!Array.isArray(files)) return [];
  return files.flatMap((f: { name?: unknown; path?: unknown; size?: unknown; xxh64?: unknown }) => {
    // self reports names in its directory, criu paths below it (images/…); neither may climb out.
    const rel = typeof f?.path === 'string' ? f.path : f?.name;
    const ok = typeof rel === 'string' && /^[\w.-]+(\/[\w.-]+)?$/.test(rel) && !rel.split('/').some((p) => p === '..' || p === '.');
    return ok && Number.isInteger(f.size) && typeof f.xxh64 === 'string' && /^[0-9a-f]{16}$/.test(f.xxh64)
      ? [{ path: `rank-${rank}/${rel}`, size: f.size as number, xxh64: f.xxh64 }]
      : [];
  });
}

/**
 * The snapshot is committed: the ranks are told to go on, and the checkpoint is
 * reported without waiting for their replies (one round less while the caller
 * waits). Each rank's connection is ordered, so a later request finds it resumed;
 * a rank that fails to resume is the job's failure, seen by the launcher as such.
 */
function resumeAll(c: Coordinator, ranks: number[], timeoutMs: number, body: Record<string, unknown>): void {
  for (const r of ranks) c.requestRank(r, 'ckpt-resume', timeoutMs, body).catch(() => {});
}

/**
 * Keeps the newest `keep` committed snapshots of job `jobName` in a store and removes
 * its older ones. Anything else in the store — another job's snapshots, a process's,
 * one whose manifest cannot be read — is neither counted nor ever removed.
 */
export function applyRetention(store: string, keep: number, jobName: string): number[] {
  if (!(keep >= 1)) return [];
  const committed = listSnapshots(store).filter((s) => s.manifest?.kind === 'job' && s.manifest.job.name === jobName);
  const removed: number[] = [];
  for (const s of committed.slice(0, Math.max(0, committed.length - keep))) {
    try {
      removeSnapshot(openSnapshot(s.dir));
      removed.push(s.seq);
    } catch (err) {
      if (!(err instanceof CkptError)) throw err;
    }
  }
  return removed;
}

/** How many ranks CRIU dumps at once (`CKPT_DUMP_CONCURRENCY`; default: all). */
function dumpConcurrency(): number {
  return Math.max(1, Math.floor(envMs('CKPT_DUMP_CONCURRENCY', Infinity)));
}

/** A failed criu checkpoint after which the job cannot go on (a rank went down and did not come back). */
export function isFatalCheckpointError(err: unknown): boolean {
  return err instanceof JobError && (err.details as { fatal?: boolean } | undefined)?.fatal === true;
}

async function coordinateCriuCheckpoint(o: JobCheckpointOptions): Promise<Snapshot> {
  const { c, ranks, phaseMs, pending, createdAt, all } = begin(o);
  const dumpMs = o.dumpMs ?? envMs('CKPT_CHECKPOINT_DUMP_MS', Math.max(phaseMs, 120_000));
  let phase: CheckpointPhase = 'prepare';
  /** Ranks that went down for their dump, and their way back. */
  const down = new Map<number, Promise<ControlMessage>>();
  try {
    o.onPhase?.('prepare');
    await faultPoint('prepare', 'coord');
    const prepared = await all('ckpt-prepare', phaseMs, () => ({ crs: 'criu', seq: pending.seq, store: pending.store, dir: pending.finalDir, requested: o.requested === true }));
    const written = prepared.map((m) => m.written as number[]);

    phase = 'drain';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    await all('ckpt-drain', phaseMs, (j) => ({ expected: ranks.map((i) => written[i]?.[j] ?? 0) }));

    phase = 'dump';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    for (const r of ranks) mkdirPrivate(join(pending.dir, `rank-${r}`));
    // All ranks at once by default; CKPT_DUMP_CONCURRENCY=K dumps K at a time (bounds
    // the CRIU processes' memory and CPU for a large job; measured at N = 16 on 2
    // cores the whole checkpoint took about as long either way, 2.2–2.5 s). A rank
    // waiting for its turn runs on: its sends are held and nothing is in flight to
    // it, so the cut stays consistent. After a failure no further rank goes down.
    const hellos = new Map<number, ControlMessage>();
    const queue = [...ranks];
    /** A rank that refused, never answered, or did not come back; `stop`: no further dumps. */
    let failure: unknown;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop && queue.length > 0) {
        const r = queue.shift()!;
        const back = c.awaitRejoin(r, dumpMs);
        back.catch(() => {});
        try {
          await c.requestRank(r, 'ckpt-dump', phaseMs, { rankDir: join(pending.dir, `rank-${r}`) });
        } catch (err) {
          // It did not go down (it refused, or never answered): nobody waits for it.
          failure ??= err;
          stop = true;
          return;
        }
        down.set(r, back);
        try {
          const hello = await back;
          hellos.set(r, hello);
          if (hello.dumped !== 'ok') stop = true;
        } catch (err) {
          failure ??= err;
          stop = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(dumpConcurrency(), ranks.length) }, worker));
    if (failure !== undefined) throw failure;
    const failed = [...hellos.keys()].filter((r) => hellos.get(r)?.dumped !== 'ok');
    if (failed.length) {
      throw new JobError(ErrorCodes.CHECKPOINT_FAILED, failed.map((r) => `rank ${r}: ${String(hellos.get(r)?.message ?? 'dump failed')}`).join('; '), {
        details: { ranks: failed },
      });
    }

    phase = 'commit';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    const snapshot = await commitSnapshot(
      pending,
      jobManifest(
        o,
        createdAt,
        { name: 'criu', version: o.crsVersion ?? 'unknown' },
        ranks.map((r) => {
        const p = prepared[r]!;
        return {
          rank: r,
          pid: Number(p.pid),
          dir: `rank-${r}`,
          tree: p.tree as number[],
          stdio: p.stdio as (string | null)[],
          rejoin: String(p.rejoin),
          shellJob: p.shellJob === true,
          networkLock: p.networkLock === 'skip' ? 'skip' : 'nftables',
        };
      }),
        // How long each rank's own CRIU dump took (its local snapshot), as the rank timed it.
        { images: 'images', dumpMs: ranks.map((r) => (typeof hellos.get(r)?.dumpMs === 'number' ? hellos.get(r)!.dumpMs : null)) },
      ),
      { synced: ranks.flatMap((r) => syncedFiles(r, hellos.get(r)?.files)), syncedDirs: ranks.flatMap((r) => [`rank-${r}`, `rank-${r}/images`]) },
    );

    phase = 'resume';
    o.onPhase?.(phase);
    await faultPoint(phase, 'coord');
    resumeAll(c, ranks, phaseMs, { outcome: 'continue', seq: snapshot.seq, peers: c.peerAddresses() });
    return snapshot;
  } catch (err) {
    let fatal = false;
    let leftover: string | undefined;
    if (phase !== 'resume') {
      // Ranks that went down must be back (their images written) before anyone can reconnect.
      const back = await Promise.allSettled([...down.values()]);
      fatal = back.some((b) => b.status === 'rejected');
      if (fatal) {
        // The job cannot go on (it is aborted); the snapshot goes all the same.
        leftover = await abortCheckpoint(c, [], pending, 0, {});
      } else {
        leftover = await abortCheckpoint(c, ranks, pending, abortMs(phaseMs), { outcome: 'abort', peers: c.peerAddresses() });
      }
    }
    const cause = err instanceof Error ? err.message : String(err);
    throw new JobError(ErrorCodes.CHECKPOINT_FAILED, `checkpoint of job ${o.job.id} failed in phase ${phase}: ${cause}${leftover ? `; ${leftover}` : ''}`, {
      cause: err,
      details: { phase, fatal },
      hint: fatal ? 'a rank went down for its CRIU dump and did not come back: the job cannot go on' : undefined,
    });
  }
}
