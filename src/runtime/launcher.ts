// launchJob(): starts a coordinator and N ranks of a command, forwards their
// output, and ends the job as a whole — when every rank has exited, or at the
// first failure, by ending every other rank's process group (SIGTERM, then SIGKILL).
import { EventEmitter } from 'node:events';
import { accessSync, constants, mkdtempSync, closeSync, rmSync, statSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import { spawnGroup, type Exit } from '../util/spawn.js';
import { native } from '../util/native.js';
import { logsDir } from '../util/paths.js';
import { restoredRank, spawnedRank, terminateRank, type RankProcess } from './rankproc.js';
import { snapshotPath, type JobSnapshot } from '../store/store.js';
import { signalGroup } from '../util/signals.js';
import { newSecret, type Address, type Transport } from '../wire/channel.js';
import { Coordinator } from './coordinator.js';
import { EXIT_CHECKPOINTED, assertStoreFree, canonicalStore, claimStore, processStartTime, removeJob, writeJob, type JobRecord, type JobState } from '../registry/jobs.js';
import { forwardLines, openOutputFile, prefixedSink, prepareOutputDir } from './output.js';
import type { CriuRankRecord } from '../crs/criu/job.js';
import { applyRetention, coordinateCheckpoint, isFatalCheckpointError, jobEnvForSnapshot, type CheckpointPhase, type JobCheckpointer } from './checkpoint.js';
import type { EndState } from '../store/manifest.js';
import type { Snapshot } from '../store/store.js';
import { stateDir } from '../util/paths.js';
import { version } from '../version.js';

/** The most ranks one job may have: every rank may connect to every other. */
export const MAX_RANKS = 256;

export type OutputMode =
  /** `[rank] line` on the given streams (default: this process's stdout/stderr). */
  | { mode: 'prefix'; stdout?: Writable; stderr?: Writable }
  /** One file per rank and stream: DIR/rank-N.out and DIR/rank-N.err. */
  | { mode: 'files'; dir: string }
  /** Only 'output' events. */
  | { mode: 'events' };

/** CRIU restores of a job's ranks run this many at a time. */
const RESTORE_CONCURRENCY = Math.max(2, Math.min(8, availableParallelism() * 2));

export interface LaunchOptions {
  command: string;
  args?: readonly string[];
  size: number;
  oob?: Transport;
  /** Host to listen on for tcp (default 127.0.0.1). */
  bind?: string;
  name?: string;
  output?: OutputMode;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Ranks that have joined wait this long for the rest (ms, default 60 s). */
  joinTimeoutMs?: number;
  /** Default timeout of every wait in the rank library (ms; CKPT_TIMEOUT_MS). */
  rankTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL when the job is ended (ms, default 2 s). */
  killGraceMs?: number;
  /** Record the job in the state directory for `ckpt ps`/`ckpt kill` (default true). */
  register?: boolean;
  /** The snapshot store of this job's checkpoints (default: <state>/snapshots/<name>). */
  store?: string;
  /** Checkpoint every this many ms (0: never). */
  intervalMs?: number;
  /** Keep only the newest K committed snapshots (periodic and requested alike). */
  keep?: number;
  /** Restart (self): every rank resumes from its part of this job snapshot. */
  restartFrom?: string;
  /** Restart (criu): every rank is restored from its images in this job snapshot instead of started. */
  restoreFrom?: JobSnapshot;
  /**
   * The job's checkpointer: `criu` dumps every rank wherever its code is; `self`
   * saves each rank's state at its safe points. Default: CKPT_CRS when it names
   * one of them, else criu when it can work here, else self.
   */
  crs?: JobCheckpointer;
}

export interface RankExit extends Exit {
  rank: number;
  pid: number | null;
}

export interface JobResult {
  /** 0 when every rank exited 0; else the failing rank's status (128+N for signal N). */
  status: number;
  ranks: RankExit[];
  /** Why the job was aborted, when it was. */
  error?: JobError;
  /** It ended at a checkpoint taken to end it (`--term`, a checkpoint signal): resume it from there. */
  checkpointed?: boolean;
}

export { EXIT_CHECKPOINTED };

export interface JobEvents {
  /** Every rank has called init(): the wire-up is complete. */
  ready: [];
  output: [{ rank: number; stream: 'stdout' | 'stderr'; line: Buffer }];
  'rank-exit': [RankExit];
  /** The job is being aborted (first failure or a kill). */
  abort: [JobError];
  /** A connection to the coordinator was refused; the job goes on. */
  rejected: [CkptError];
  /** A checkpoint was committed. */
  checkpoint: [Snapshot];
  /** A checkpoint failed (the job goes on). */
  'checkpoint-error': [CkptError];
}

interface RankProc {
  rank: number;
  proc: RankProcess;
  exit?: Exit;
  exited: Promise<Exit>;
  output: Promise<void>[];
}

/** The checkpointer a job uses, with the version that goes into its manifests. */
async function resolveJobCheckpointer(name: string | undefined): Promise<{ name: JobCheckpointer; version: string }> {
  const { selectCheckpointer } = await import('../crs/registry.js');
  if (name !== undefined && name !== 'criu' && name !== 'self') {
    throw new CkptError(ErrorCodes.USAGE, `a job is checkpointed by criu or self, not '${name}'`);
  }
  if (name === undefined) {
    try {
      const { availability } = await selectCheckpointer({ name: 'criu' });
      return { name: 'criu', version: availability.version ?? 'unknown' };
    } catch {
      return { name: 'self', version };
    }
  }
  const { availability } = await selectCheckpointer({ name });
  return { name, version: availability.version ?? version };
}

export class Job extends EventEmitter<JobEvents> {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  readonly oob: Transport;
  readonly secret: string;
  /** The private 0700 directory holding the job's sockets. */
  readonly dir: string;
  readonly startedAt = Date.now();
  state: JobState = 'starting';
  private readonly coordinator: Coordinator;
  private readonly procs: RankProc[] = [];
  private failure: { error: JobError; status: number } | undefined;
  private readonly done: Promise<JobResult>;
  private resolveDone!: (r: JobResult) => void;
  private readonly options: LaunchOptions;
  private checkpointing: Promise<Snapshot> | undefined;
  private endedByCheckpoint = false;
  private periodic: NodeJS.Timeout | undefined;
  private crs: Promise<{ name: JobCheckpointer; version: string }> | undefined;
  /** The environment the ranks were started with (recorded in job snapshots, less the run-only variables). */
  private rankEnv: NodeJS.ProcessEnv = {};
  /** --output DIR: each rank's [stdout, stderr] files, opened before anything starts; taken by the rank's start. */
  private outputFiles = new Map<number, (number | undefined)[]>();
  /** Gives back the store claim (see claimStore). */
  private releaseStore: (() => void) | undefined;

  /** @internal use launchJob() */
  constructor(options: LaunchOptions, id: string, dir: string, coordinator: Coordinator, secret: string) {
    super();
    this.options = options;
    this.id = id;
    this.name = options.name ?? id;
    this.size = options.size;
    this.oob = options.oob ?? 'unix';
    this.dir = dir;
    this.secret = secret;
    this.coordinator = coordinator;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Every rank has joined (the 'ready' event has fired). */
  get isReady(): boolean {
    return this.coordinator.ready;
  }

  /** The coordinator's address (CKPT_COORD). */
  get address(): string {
    return this.coordinator.address;
  }

  get pids(): (number | null)[] {
    return this.procs.map((p) => p.proc.pid ?? null);
  }

  /** The job's checkpointer (resolved on first use unless given at launch). */
  checkpointer(): Promise<{ name: JobCheckpointer; version: string }> {
    const envCrs = process.env.CKPT_CRS === 'criu' || process.env.CKPT_CRS === 'self' ? process.env.CKPT_CRS : undefined;
    this.crs ??= resolveJobCheckpointer(this.options.crs ?? envCrs);
    this.crs.catch(() => (this.crs = undefined));
    return this.crs;
  }

  /** Resolves once every rank has joined; rejects if the job ends first. */
  private whenReady(): Promise<void> {
    if (this.isReady) return Promise.resolve();
    const ending = () => new JobError(ErrorCodes.CHECKPOINT_FAILED, `job ${this.id} cannot be checkpointed: it ended before every rank had joined`);
    if (this.failure || this.state === 'exited') return Promise.reject(ending());
    const waitMs = this.options.joinTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const settle = (err?: Error) => {
        clearTimeout(timer);
        this.off('ready', onReady);
        this.off('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => settle();
      const onAbort = () => settle(ending());
      const timer = setTimeout(
        () => settle(new JobError(ErrorCodes.CHECKPOINT_FAILED, `job ${this.id} cannot be checkpointed: not every rank has joined within ${waitMs / 1000} s`)),
        waitMs,
      );
      timer.unref();
      this.once('ready', onReady);
      this.once('abort', onAbort);
    });
  }

  /** The checkpoint in progress, if any (settles when it is committed or aborted). */
  busy(): Promise<unknown> | undefined {
    return this.checkpointing?.catch(() => {});
  }

  /** Resolves when every rank has exited (never rejects; see result.status / result.error). */
  wait(): Promise<JobResult> {
    return this.done;
  }

  /** Ends the job: every rank's process group gets SIGTERM, then SIGKILL. */
  kill(reason = 'killed', status = 143): void {
    this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} ${reason}`, { details: { job: this.id } }), status);
  }

  /** Delivers a signal to every live rank's process group (the job goes on unless it kills them). */
  signal(signal: NodeJS.Signals): void {
    for (const p of this.procs) if (!p.exit && p.proc.pid && p.proc.pid > 1) signalGroup(p.proc.pid, signal);
  }

  /** Where this job's snapshots go unless a checkpoint names another store. */
  get store(): string {
    return this.options.store ?? join(stateDir(), 'snapshots', this.name);
  }

  /**
   * Takes a coordinated checkpoint of the whole job into a new numbered snapshot,
   * then continues, stops (SIGSTOP to every rank) or ends the job (status 0).
   */
  checkpoint(request: { then?: EndState; store?: string; crs?: string; onPhase?: (phase: CheckpointPhase) => void; requested?: boolean } = {}): Promise<Snapshot> {
    if (this.checkpointing) return Promise.reject(new CkptError(ErrorCodes.CHECKPOINT_BUSY, `a checkpoint of job ${this.id} is already in progress`));
    const then = request.then ?? 'continue';
    if (!['continue', 'stop', 'terminate'].includes(then)) return Promise.reject(new CkptError(ErrorCodes.USAGE, `unknown end state '${then}'`));
    const o = this.options;
    const store = request.store ?? this.store;
    // Another store than the job's own (ckpt checkpoint JOB --dir): it must not be another job's.
    if (request.store !== undefined && canonicalStore(request.store) !== canonicalStore(this.store)) {
      try {
        assertStoreFree(request.store, this);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const crs = request.crs === undefined ? this.checkpointer() : resolveJobCheckpointer(request.crs);
    // A job still starting is checkpointed once every rank has joined (a batch script
    // may ask right after the launch), not refused.
    const run = Promise.all([crs, this.whenReady()]).then(([c]) => coordinateCheckpoint({
      coordinator: this.coordinator,
      store,
      then,
      crs: c.name,
      crsVersion: c.version,
      onPhase: request.onPhase,
      requested: request.requested,
      pids: this.procs.map((p) => p.proc.pid ?? 0),
      job: {
        id: this.id,
        name: this.name,
        size: this.size,
        oob: this.oob,
        argv: [o.command, ...(o.args ?? [])],
        cwd: o.cwd ?? process.cwd(),
        ...jobEnvForSnapshot(this.rankEnv),
        // What a restart resumes: the schedule and the retention.
        ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}),
        ...(o.keep ? { keep: o.keep } : {}),
      },
    })).then((snapshot) => {
      if (o.keep) applyRetention(store, o.keep, this.name);
      this.emit('checkpoint', snapshot);
      if (then === 'stop') this.signal('SIGSTOP');
      if (then === 'terminate') {
        this.endedByCheckpoint = true;
        const grace = o.killGraceMs ?? 2000;
        for (const p of this.procs) if (!p.exit) void terminateRank(p.proc, grace).catch(() => {});
      }
      return snapshot;
    }, (err: unknown) => {
      // A criu checkpoint that took a rank down and never got it back: the job cannot go on.
      if (isFatalCheckpointError(err)) this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} aborted: ${(err as Error).message}`, { cause: err }), 1);
      throw err;
    });
    this.checkpointing = run;
    const clear = () => {
      if (this.checkpointing === run) this.checkpointing = undefined;
    };
    run.then(clear, (err: CkptError) => {
      clear();
      this.emit('checkpoint-error', err);
    });
    return run;
  }

  /** Counters the ranks reported at finalize (undefined for ranks that did not finalize). */
  counters(): ReturnType<Coordinator['finalCounters']> {
    return this.coordinator.finalCounters();
  }

  /** Asks a live rank for its per-peer message counters over the OOB channel. */
  async rankStats(rank: number): Promise<{ sent: number[]; received: number[] }> {
    const reply = await this.coordinator.requestRank(rank, 'stats');
    return { sent: reply.sent as number[], received: reply.received as number[] };
  }

  record(): JobRecord {
    return {
      id: this.id,
      name: this.name,
      size: this.size,
      oob: this.oob,
      address: this.address,
      dir: this.dir,
      secret: this.secret,
      pid: process.pid,
      pidStart: processStartTime(process.pid) ?? 0,
      command: [this.options.command, ...(this.options.args ?? [])],
      ranks: this.procs.map((p) => ({ rank: p.rank, pid: p.proc.pid ?? null })),
      state: this.state,
      startedAt: this.startedAt,
    };
  }

  /** @internal */
  start(env: NodeJS.ProcessEnv): void {
    this.setUp(env);
    const o = this.options;
    const output = o.output ?? { mode: 'prefix' };
    for (let rank = 0; rank < this.size; rank++) {
      let stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
      const fds: number[] = [];
      if (output.mode === 'files') {
        fds.push(this.takeOutputFile(rank, 0), this.takeOutputFile(rank, 1));
        stdio = ['ignore', fds[0]!, fds[1]!];
      }
      const child = spawnGroup(o.command, o.args ?? [], {
        cwd: o.cwd,
        stdio,
        env: { ...env, CKPT_RANK: String(rank), ...(o.restartFrom ? { CKPT_RESTART_SNAPSHOT: o.restartFrom } : {}) },
      });
      for (const fd of fds) closeSync(fd);
      this.supervise(rank, spawnedRank(child));
    }
    this.state = 'running';
    this.persist();
  }

  /**
   * @internal Restart from a criu job snapshot: every rank is restored by CRIU as
   * our child. Its old stdout/stderr become new pipes we forward; its rejoin pipe
   * becomes one that tells it this coordinator's address, the job id and secret.
   */
  async startRestored(snapshot: JobSnapshot, env: NodeJS.ProcessEnv): Promise<void> {
    this.setUp(env);
    const { criuBinary } = await import('../crs/criu/index.js');
    const { restoreJobRank } = await import('../crs/criu/restore.js');
    const criuPath = (await criuBinary()).path;
    const output = this.options.output ?? { mode: 'prefix' };
    const n = native();
    const logDir = join(logsDir(), `restore-job-${snapshot.seq}-${Date.now()}-${process.pid}`);
    const restoreRank = async (rec: CriuRankRecord): Promise<void> => {
      if (!rec.rejoin || !rec.stdio) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `rank ${rec.rank} of ${snapshot.dir} has no criu restore record`);
      const ours: number[] = [];
      const inherit: { key: string; fd: number }[] = [];
      const streams: (Readable | null)[] = [null, null];
      try {
        for (const i of [1, 2] as const) {
          const key = rec.stdio[i];
          if (!key || !/^(pipe|socket):\[\d+\]$/.test(key)) continue;
          const shared = inherit.find((h) => h.key === key); // 2>&1: one pipe
          if (shared) continue;
          let fd: number;
          if (output.mode === 'files') {
            fd = this.takeOutputFile(rec.rank, i - 1);
          } else {
            // The read end belongs to the stream from here on.
            const [readEnd, writeEnd] = n.pipe();
            streams[i - 1] = new Socket({ fd: readEnd, readable: true, writable: false });
            fd = writeEnd;
          }
          ours.push(fd);
          inherit.push({ key, fd });
        }
        const [rejoinRead, rejoinWrite] = n.pipe();
        ours.push(rejoinRead);
        try {
          writeSync(rejoinWrite, JSON.stringify({ coord: this.address, job: this.id, secret: this.secret }));
        } finally {
          closeSync(rejoinWrite);
        }
        inherit.push({ key: rec.rejoin, fd: rejoinRead });
        const pid = await restoreJobRank(
          {
            imagesDir: snapshotPath(snapshot, rec.dir, 'images'),
            pids: rec.tree?.length ? rec.tree : [rec.pid],
            inherit,
            shellJob: rec.shellJob,
            networkLock: rec.networkLock,
            logDir: join(logDir, `rank-${rec.rank}`),
          },
          criuPath,
        );
        this.supervise(rec.rank, restoredRank(pid, streams[0] ?? null, streams[1] ?? null));
      } catch (err) {
        for (const s of streams) s?.destroy();
        throw err;
      } finally {
        // The restored rank holds its own copies now.
        for (const fd of ours) closeQuietly(fd);
      }
    };
    try {
      // A few restores at a time: each CRIU restore waits on the disk and the kernel
      // part of the time. Every one settles before a failure is acted on, so that no
      // restored rank is left unsupervised.
      const queue = [...snapshot.manifest.ranks] as CriuRankRecord[]; // validated by restartJob
      const settled: PromiseSettledResult<void>[] = [];
      const worker = async () => {
        for (let rec = queue.shift(); rec; rec = queue.shift()) settled.push(...(await Promise.allSettled([restoreRank(rec)])));
      };
      await Promise.all(Array.from({ length: Math.min(RESTORE_CONCURRENCY, queue.length) }, worker));
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      // Whatever was restored goes again: the job cannot start without every rank.
      const e = err instanceof CkptError ? err : new CkptError(ErrorCodes.CRIU_FAILED, (err as Error).message, { cause: err });
      this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id}: restoring the ranks failed: ${e.message}`, { cause: e }), 1);
      await Promise.all(this.procs.map((p) => p.exited));
      for (const p of this.procs) {
        p.proc.stdout?.destroy();
        p.proc.stderr?.destroy();
      }
      this.state = 'exited';
      await this.coordinator.close();
      if (this.options.register !== false) removeJob(this.id);
      rmSync(this.dir, { recursive: true, force: true });
      this.closeOutputFiles();
      this.releaseStore?.();
      throw e;
    }
    this.closeOutputFiles(); // a 2>&1 rank's second file, or a stream that was no pipe
    this.state = 'running';
    this.persist();
  }

  /** @internal the rank output files and the store claim (launchJob takes them before the job starts) */
  adopt(files: Map<number, (number | undefined)[]>, releaseStore: () => void): void {
    this.outputFiles = files;
    this.releaseStore = releaseStore;
  }

  private takeOutputFile(rank: number, stream: number): number {
    const pair = this.outputFiles.get(rank);
    const fd = pair?.[stream];
    if (pair === undefined || fd === undefined) throw new CkptError(ErrorCodes.INTERNAL, `no output file for rank ${rank}`);
    pair[stream] = undefined;
    return fd;
  }

  /** @internal closes the output files no rank took (ours: each rank has its own copies). */
  closeOutputFiles(): void {
    for (const pair of this.outputFiles.values()) for (const fd of pair) if (fd !== undefined) closeQuietly(fd);
    this.outputFiles.clear();
  }

  private setUp(env: NodeJS.ProcessEnv): void {
    const o = this.options;
    this.coordinator.on('ready', () => {
      this.emit('ready');
      this.persist();
    });
    this.coordinator.on('abort', ({ message, rank, status }) =>
      this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} aborted: ${message}`, { details: { job: this.id, rank } }), status ?? 1),
    );
    this.coordinator.on('kill', ({ signal }) => (signal ? this.signal(signal) : this.kill('killed by ckpt kill')));
    this.coordinator.on('rejected', (err) => this.emit('rejected', err));
    this.coordinator.statusProvider = () => ({ ...this.record(), secret: undefined });
    this.rankEnv = env;
    this.coordinator.checkpointHandler = async ({ then, store, crs, from }) => {
      if (from === 'rank') {
        // A rank's comm.checkpoint(): taken once the checkpoint in progress (periodic, requested) is over.
        while (this.checkpointing) await this.checkpointing.catch(() => {});
      }
      const s = await this.checkpoint({ then: then as EndState | undefined, store, crs, requested: from === 'rank' });
      return { snapshot: s.dir, store: s.store, seq: s.seq };
    };
    if (o.intervalMs) {
      this.periodic = setInterval(() => {
        if (!this.checkpointing && this.coordinator.allConnected) this.checkpoint().catch(() => {});
      }, o.intervalMs);
      this.periodic.unref();
    }
  }

  private supervise(rank: number, proc: RankProcess): void {
    const output = this.options.output ?? { mode: 'prefix' };
    const rp: RankProc = { rank, proc, exited: proc.exited.catch((err: Error) => this.spawnFailed(rank, err)), output: [] };
    for (const [name, stream] of [['stdout', proc.stdout], ['stderr', proc.stderr]] as const) {
      if (!stream) continue;
      const sink =
        output.mode === 'prefix'
          ? prefixedSink((name === 'stdout' ? output.stdout : output.stderr) ?? (name === 'stdout' ? process.stdout : process.stderr), rank)
          : undefined;
      rp.output.push(
        forwardLines(stream, (line) => {
          sink?.(line);
          if (this.listenerCount('output')) this.emit('output', { rank, stream: name, line: Buffer.from(line) });
        }),
      );
    }
    this.procs.push(rp);
    void rp.exited.then((exit) => this.onExit(rp, exit));
  }

  private spawnFailed(rank: number, err: Error): Exit {
    this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id}: cannot start rank ${rank}: ${err.message}`, { details: { rank } }), 127);
    return { code: 127, signal: null };
  }

  private onExit(proc: RankProc, exit: Exit): void {
    proc.exit = exit;
    const pid = proc.proc.pid;
    // Whatever the rank left in its process group must not outlive it.
    if (pid && pid > 1) signalGroup(pid, 'SIGKILL');
    this.emit('rank-exit', { rank: proc.rank, pid: pid ?? null, ...exit });
    if ((exit.code !== 0 || exit.signal) && !this.failure && !this.endedByCheckpoint) {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
      const status = exit.signal ? 128 + (osConstants.signals[exit.signal] ?? 0) : (exit.code ?? 1);
      this.abort(
        new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} aborted: rank ${proc.rank} ${how}`, {
          details: { job: this.id, rank: proc.rank, code: exit.code, signal: exit.signal },
        }),
        status,
      );
    }
    // After the abort (if any): ranks then hear of the abort before of the exit.
    if (!this.failure) this.coordinator.rankExited(proc.rank, exit);
    if (this.procs.length === this.size && this.procs.every((p) => p.exit)) void this.finish();
  }

  private abort(error: JobError, status: number): void {
    if (this.failure || this.state === 'exited') return;
    this.failure = { error, status };
    this.state = 'aborting';
    this.persist();
    this.emit('abort', error);
    this.coordinator.broadcastAbort(error.message);
    const grace = this.options.killGraceMs ?? 2000;
    for (const p of this.procs) if (!p.exit) void terminateRank(p.proc, grace).catch(() => {});
  }

  private async finish(): Promise<void> {
    if (this.state === 'exited') return;
    this.state = 'exited';
    if (this.periodic) clearInterval(this.periodic);
    // Output pipes close when the last writer exits; a bounded wait covers a
    // descendant that escaped the process group with a pipe end.
    await Promise.race([Promise.all(this.procs.flatMap((p) => p.output)), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const p of this.procs) {
      p.proc.stdout?.destroy();
      p.proc.stderr?.destroy();
    }
    await this.coordinator.close();
    if (this.options.register !== false) removeJob(this.id);
    rmSync(this.dir, { recursive: true, force: true });
    this.releaseStore?.();
    const ranks = this.procs.map((p) => ({ rank: p.rank, pid: p.proc.pid ?? null, ...p.exit! }));
    this.resolveDone(
      this.failure
        ? { status: this.failure.status, ranks, error: this.failure.error }
        : this.endedByCheckpoint
          ? { status: EXIT_CHECKPOINTED, ranks, checkpointed: true }
          : { status: 0, ranks },
    );
  }

  private persist(): void {
    if (this.options.register === false || this.state === 'exited') return;
    try {
      writeJob(this.record());
    } catch {
      // The registry is for ps/kill; a job runs without it.
    }
  }
}

/** Starts a job. Fails before starting anything on bad options or an unknown command. */
export async function launchJob(options: LaunchOptions): Promise<Job> {
  const size = options.size;
  if (!Number.isInteger(size) || size < 1 || size > MAX_RANKS) {
    throw new CkptError(ErrorCodes.USAGE, `a job has 1 to ${MAX_RANKS} ranks, not ${size}`);
  }
  const oob = options.oob ?? 'unix';
  if (oob !== 'unix' && oob !== 'tcp') throw new CkptError(ErrorCodes.USAGE, `--oob is unix or tcp, not '${String(oob)}'`);
  if (options.bind !== undefined && oob !== 'tcp') throw new CkptError(ErrorCodes.USAGE, '--bind needs --oob tcp');
  const env = { ...process.env, ...options.env };
  resolveCommand(options.command, env.PATH ?? '', options.cwd);
  const id = randomBytes(4).toString('hex');
  const name = options.name ?? id;
  // A store holds one job's snapshots: refused when another live job has it, or it
  // holds another job's (a restart is the same job: it keeps the name).
  const releaseStore = claimStore(options.store ?? join(stateDir(), 'snapshots', name), { id, name });
  const outputFiles = new Map<number, (number | undefined)[]>();
  const closeFiles = () => {
    for (const pair of outputFiles.values()) for (const fd of pair) if (fd !== undefined) closeQuietly(fd);
  };
  try {
    if (options.output?.mode === 'files') {
      const out = prepareOutputDir(options.output.dir);
      // Every file before anything starts: a refused one fails the launch, not rank k of N.
      const append = options.restoreFrom !== undefined;
      for (let rank = 0; rank < size; rank++) outputFiles.set(rank, [openOutputFile(out, `rank-${rank}.out`, append), openOutputFile(out, `rank-${rank}.err`, append)]);
    }
  } catch (err) {
    closeFiles();
    releaseStore();
    throw err;
  }

  const secret = newSecret();
  // Sockets live in a private directory: only this user can reach them (Node cannot
  // read SO_PEERCRED; the 0700 directory plus the job secret stand in for it).
  const dir = mkdtempSync(join(tmpdir(), `ckpt-${id}-`));
  const address: Address = oob === 'unix' ? { transport: 'unix', path: join(dir, 'coord.sock') } : { transport: 'tcp', host: options.bind ?? '127.0.0.1', port: 0 };
  const coordinator = new Coordinator({ jobId: id, size, secret, address, joinTimeoutMs: options.joinTimeoutMs });
  try {
    await coordinator.listen();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    closeFiles();
    releaseStore();
    throw err;
  }
  const job = new Job(options, id, dir, coordinator, secret);
  job.adopt(outputFiles, releaseStore);
  const rankEnv: NodeJS.ProcessEnv = {
    ...env,
    CKPT_SIZE: String(size),
    CKPT_JOB_ID: id,
    CKPT_COORD: coordinator.address,
    CKPT_JOB_SECRET: secret,
  };
  if (options.rankTimeoutMs !== undefined) rankEnv.CKPT_TIMEOUT_MS = String(options.rankTimeoutMs);
  if (options.joinTimeoutMs !== undefined) rankEnv.CKPT_JOIN_TIMEOUT_MS = String(options.joinTimeoutMs + 10_000);
  if (options.crs === 'criu') {
    try {
      await job.checkpointer(); // fail now, not at the first checkpoint
    } catch (err) {
      await coordinator.close();
      rmSync(dir, { recursive: true, force: true });
      job.closeOutputFiles();
      releaseStore();
      throw err;
    }
  }
  if (options.restoreFrom) await job.startRestored(options.restoreFrom, rankEnv);
  else job.start(rankEnv);
  return job;
}

/** Finds the executable as spawn will (PATH search unless it has a slash); fails early if absent. */
export function resolveCommand(command: string, path: string, cwd?: string): string {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (command === '') throw new CkptError(ErrorCodes.USAGE, 'no command given');
  if (command.includes('/')) {
    const full = isAbsolute(command) ? command : resolvePath(cwd ?? process.cwd(), command);
    if (executable(full)) return full;
    throw new CkptError(ErrorCodes.COMMAND_NOT_FOUND, `command not found or not executable: ${command}`);
  }
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const full = join(dir, command);
    if (executable(full)) return full;
  }
  throw new CkptError(ErrorCodes.COMMAND_NOT_FOUND, `command not found: ${command}`, { hint: 'not in PATH' });
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
