// A running job as its launcher holds it — the coordinator, every rank, the job's state —
// and its life cycle: the ranks started (or restored), supervised, and the job ended as a
// whole — when every rank has exited, or at the first failure, by ending every other rank
// (SIGTERM, then SIGKILL); checkpoints on request or on a schedule (starter.ts starts ranks).
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import { EXIT_CHECKPOINTED, processStartTime, removeJob, writeJob, type JobRecord, type JobState } from '../registry/jobs.js';
import type { EndState } from '../store/manifest.js';
import type { JobSnapshot, Snapshot } from '../store/store.js';
import { SnapshotReserve } from '../store/reserve.js';
import { shellStatus } from '../util/exit-status.js';
import { stateDir } from '../util/paths.js';
import type { Exit } from '../util/spawn.js';
import type { Transport } from '../wire/channel.js';
import { applyRetention, coordinateCheckpoint, isFatalCheckpointError } from './checkpoint.js';
import type { Coordinator } from './coordinator.js';
import { checkpointHandler, checkRequest, everyInterval, manifestJob, nextSnapshotDirs, whenAllJoined, type CheckpointRequest } from './job-checkpoint.js';
import { checkpointerFromEnv, resolveJobCheckpointer, type ChosenCheckpointer } from './job-checkpointer.js';
import type { JobEvents, JobResult, LaunchOptions, RankExit } from './job-types.js';
import { JobRanks } from './job-ranks.js';
import type { RankOutputFiles } from './rank-output.js';
import { LocalStarter } from './starter-local.js';
import type { RankStarter } from './starter.js';
import { staging } from './staging.js';
import { removeOwnDir } from '../util/remove-tree.js';

/** How long ranks told to end at a snapshot have to exit before they are ended as in an abort. */
const TERMINATE_GRACE_MS = 10_000;

/** @internal what launchJob() has set up for a job before it starts. */
export interface JobInit {
  options: LaunchOptions;
  id: string;
  /** The private 0700 directory holding the job's sockets. */
  dir: string;
  coordinator: Coordinator;
  secret: string;
  /** --output DIR: every rank's files, opened before anything starts; each taken by its rank's start. */
  files?: RankOutputFiles;
  /** Gives back the store claim (see claimStore). */
  releaseStore: () => void;
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
  private readonly options: LaunchOptions;
  private readonly coordinator: Coordinator;
  private readonly starter: RankStarter;
  private readonly files: RankOutputFiles | undefined;
  private readonly releaseStore: () => void;
  private readonly ranks: JobRanks;
  private failure: { error: JobError; status: number } | undefined;
  private readonly done: Promise<JobResult>;
  private resolveDone!: (r: JobResult) => void;
  private checkpointing: Promise<Snapshot> | undefined;
  private endedByCheckpoint = false;
  private stopPeriodic: (() => void) | undefined;
  private crs: Promise<ChosenCheckpointer> | undefined;
  /** Its store's next snapshot directory, made once a checkpoint that goes on is over. */
  private readonly reserve = new SnapshotReserve();
  /** The job as its snapshots record it (the ranks' environment less the run-only variables): the same at every checkpoint of this run, so made once, not in the pause. */
  private snapshotJob: ReturnType<typeof manifestJob> | undefined;

  /** @internal use launchJob() */
  constructor(init: JobInit) {
    super();
    this.options = init.options;
    this.id = init.id;
    this.name = init.options.name ?? init.id;
    this.size = init.options.size;
    this.oob = init.options.oob ?? 'unix';
    this.dir = init.dir;
    this.secret = init.secret;
    this.coordinator = init.coordinator;
    this.starter = init.options.starter ?? new LocalStarter();
    this.files = init.files;
    this.releaseStore = init.releaseStore;
    this.done = new Promise((r) => (this.resolveDone = r));
    this.ranks = new JobRanks(this.size, init.options.output ?? { mode: 'prefix' }, {
      line: (rank, stream, line) => {
        if (this.listenerCount('output')) this.emit('output', { rank, stream, line: Buffer.from(line) });
      },
      startFailed: (rank, err) => this.startFailed(rank, err),
      exit: (exit) => this.onExit(exit),
    });
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
    return this.ranks.pids().map((pid) => pid ?? null);
  }
  /** Where this job's snapshots go unless a checkpoint names another store. */
  get store(): string {
    return this.options.store ?? join(stateDir(), 'snapshots', this.name);
  }

  /** The job's checkpointer (resolved on first use unless given at launch). */
  checkpointer(): Promise<ChosenCheckpointer> {
    this.crs ??= resolveJobCheckpointer(this.options.crs ?? checkpointerFromEnv());
    this.crs.catch(() => (this.crs = undefined));
    return this.crs;
  }

  /** The checkpoint in progress, if any (settles when it is committed or aborted). */
  busy(): Promise<unknown> | undefined {
    return this.checkpointing?.catch(() => {});
  }

  /** Resolves when every rank has exited (never rejects; see result.status / result.error). */
  wait(): Promise<JobResult> {
    return this.done;
  }

  /** Ends the job: every rank gets SIGTERM, then SIGKILL. */
  kill(reason = 'killed', status = 143): void {
    this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} ${reason}`, { details: { job: this.id } }), status);
  }

  /** Delivers a signal to every live rank with what it started (the job goes on unless it kills them). */
  signal(signal: NodeJS.Signals): void {
    this.ranks.signal(signal);
  }

  /**
   * Takes a coordinated checkpoint of the whole job into a new numbered snapshot,
   * then continues, stops (SIGSTOP to every rank) or ends the job (status EXIT_CHECKPOINTED).
   */
  checkpoint(request: CheckpointRequest = {}): Promise<Snapshot> {
    if (this.checkpointing) return Promise.reject(new CkptError(ErrorCodes.CHECKPOINT_BUSY, `a checkpoint of job ${this.id} is already in progress`));
    let then: EndState, store: string;
    try {
      ({ then, store } = checkRequest(request, this));
    } catch (err) {
      return Promise.reject(err);
    }
    const crs = request.crs === undefined || request.crs === this.options.crs ? this.checkpointer() : resolveJobCheckpointer(request.crs);
    const joined = whenAllJoined({ id: this.id, ready: this.isReady, ending: !!this.failure || this.state === 'exited', events: this }, this.options.joinTimeoutMs ?? 60_000);
    const run = Promise.all([crs, joined])
      .then(([c]) =>
        coordinateCheckpoint({
          coordinator: this.coordinator,
          store,
          then,
          crs: c.name,
          onPhase: request.onPhase,
          onCommitted: request.onCommitted,
          onProgress: request.onProgress,
          requested: request.requested,
          signal: request.signal,
          pids: this.ranks.list().map((r) => r.pid ?? 0),
          signalRank: (r, signal) => this.ranks.signalRank(r, signal),
          // Set before any rank is told or killed: their ends are then the checkpoint's, not failures.
          ending: () => (this.endedByCheckpoint = true),
          reserve: store === this.store ? this.reserve : undefined,
          nodes: this.starter.remote ? this.ranks.list().map((r) => r.node ?? '') : undefined,
          stage: this.options.stage === undefined ? undefined : staging(this.options.stage, this.starter),
          job: (this.snapshotJob ??= manifestJob(this, this.options, {})),
        }),
      )
      .then(
        (snapshot) => this.committed(snapshot, store, then),
        (err: unknown) => {
          // A criu checkpoint that took a rank down and never got it back: the job cannot go on.
          if (isFatalCheckpointError(err)) this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} aborted: ${(err as Error).message}`, { cause: err }), 1);
          throw err;
        },
      );
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

  /** After a commit: retention, then the end state the checkpoint asked for. */
  private committed(snapshot: Snapshot, store: string, then: EndState): Snapshot {
    if (this.options.keep) applyRetention(store, this.options.keep, this.name);
    if (then !== 'terminate' && store === this.store) setImmediate(() => this.state === 'running' && !this.checkpointing && this.reserve.refill(store, snapshot.manifest.crs.name, nextSnapshotDirs(snapshot, !!this.options.stage)));
    this.emit('checkpoint', snapshot);
    if (then === 'stop') this.signal('SIGSTOP');
    if (then === 'terminate') {
      // The ranks end at the snapshot by themselves (self) or were killed frozen (criu): see
      // coordinateCheckpoint. One still there after the grace (deaf to `terminate`) is ended.
      this.endedByCheckpoint = true;
      const grace = setTimeout(() => this.terminateRanks(), TERMINATE_GRACE_MS);
      grace.unref();
      void this.done.then(() => clearTimeout(grace));
    }
    return snapshot;
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
      ranks: this.ranks.list(),
      state: this.state,
      startedAt: this.startedAt,
    };
  }

  /** @internal lets the starter set up before the first rank (node agents up, the store seen by every node). */
  async attachStarter(): Promise<void> {
    await this.starter.attach?.({
      jobId: this.id,
      secret: this.secret,
      size: this.size,
      coordinator: this.address,
      store: this.store,
      stage: this.options.stage,
      acceptAgents: (handler) => this.coordinator.acceptAgents(handler),
      admitRelayed: (stream, to) => this.coordinator.admitRelayed(stream, to),
    });
  }

  /** @internal starts every rank through the job's starter. */
  start(env: NodeJS.ProcessEnv): void {
    this.setUp(env);
    const o = this.options;
    // A restart: the ranks start and join while the snapshot is verified; none gets its
    // welcome (and so none reaches load() with its state) before it verified.
    if (o.verification) this.coordinator.holdWelcome(o.verification.done);
    const restart = o.restartFrom ? { CKPT_RESTART_SNAPSHOT: o.restartFrom } : {};
    for (let rank = 0; rank < this.size; rank++) {
      this.ranks.start(this.starter, { rank, command: o.command, args: o.args ?? [], cwd: o.cwd, env: { ...env, CKPT_RANK: String(rank), ...restart } }, this.files);
    }
    this.state = 'running';
    this.persist();
  }

  /** @internal restart from a snapshot whose checkpointer restores the ranks itself (criu: crs/criu/job-restore.ts) instead of starting them. */
  async startRestored(snapshot: JobSnapshot, env: NodeJS.ProcessEnv): Promise<void> {
    this.setUp(env);
    // Listed while its ranks are restored: they run (and a script may ask for a checkpoint) before the last one is back.
    this.persist();
    try {
      const rejoin = { coord: this.address, job: this.id, secret: this.secret };
      await this.ranks.restore(snapshot, this.starter, rejoin, this.options.verification, this.files);
    } catch (err) {
      // Whatever was restored goes again: the job cannot start without every rank.
      const e = err as CkptError;
      this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id}: restoring the ranks failed: ${e.message}`, { cause: e }), 1);
      await this.ranks.exited();
      this.state = 'exited';
      await this.release();
      throw e;
    }
    this.files?.close(); // a 2>&1 rank's second file, or a stream that was no pipe
    this.state = 'running';
    this.persist();
  }

  /** @internal gives back what launchJob() set up for a job that is not started after all. */
  async discard(): Promise<void> {
    this.state = 'exited';
    await this.release();
  }

  private setUp(env: NodeJS.ProcessEnv): void {
    const c = this.coordinator;
    c.on('ready', () => {
      this.emit('ready');
      this.persist();
    });
    c.on('abort', ({ message, rank, status }) =>
      this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} aborted: ${message}`, { details: { job: this.id, rank } }), status ?? 1),
    );
    c.on('kill', ({ signal }) => (signal ? this.signal(signal) : this.kill('killed by ckpt kill')));
    c.on('rejected', (err) => this.emit('rejected', err));
    c.statusProvider = () => ({ ...this.record(), secret: undefined });
    if (this.starter.ping) c.pingAgents = () => this.starter.ping!();
    this.snapshotJob = manifestJob(this, this.options, env);
    c.checkpointHandler = checkpointHandler(this, () => this.checkpointing);
    if (this.options.intervalMs) {
      this.stopPeriodic = everyInterval(this.options.intervalMs, () => {
        if (!this.checkpointing && c.allConnected) this.checkpoint().catch(() => {});
      });
    }
  }

  private startFailed(rank: number, err: Error): Exit {
    this.abort(new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id}: cannot start rank ${rank}: ${err.message}`, { details: { rank } }), 127);
    return { code: 127, signal: null };
  }

  private onExit(exit: RankExit): void {
    const rank = exit.rank;
    this.emit('rank-exit', exit);
    if ((exit.code !== 0 || exit.signal) && !this.failure && !this.endedByCheckpoint) {
      const how = exit.lost ? `is gone (${exit.lost})` : exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
      this.abort(
        new JobError(ErrorCodes.JOB_ABORTED, `job ${this.id} aborted: rank ${rank} ${how}`, {
          details: { job: this.id, rank, code: exit.code, signal: exit.signal, ...(exit.lost ? { lost: exit.lost } : {}) },
        }),
        shellStatus(exit),
      );
    }
    // After the abort (if any): ranks then hear of the abort before of the exit.
    if (!this.failure) this.coordinator.rankExited(rank, exit);
    // A checkpoint in progress does not wait for it (a rank down for its dump never rejoins).
    else this.coordinator.rankGone(rank);
    if (this.ranks.allExited) void this.finish();
  }

  private abort(error: JobError, status: number): void {
    if (this.failure || this.state === 'exited') return;
    this.failure = { error, status };
    this.state = 'aborting';
    this.persist();
    this.emit('abort', error);
    this.coordinator.broadcastAbort(error.message);
    this.terminateRanks();
  }

  /** Every live rank: SIGTERM, then SIGKILL after the grace. */
  private terminateRanks(): void {
    this.ranks.terminate(this.options.killGraceMs ?? 2000);
  }

  private async finish(): Promise<void> {
    if (this.state === 'exited') return;
    this.state = 'exited';
    this.stopPeriodic?.();
    // A checkpoint still under way (its ranks gone, it fails at its next request) answers its asker first; bounded.
    const busy = this.busy();
    if (busy) await Promise.race([busy, new Promise((r) => setTimeout(r, 30_000).unref())]);
    await this.ranks.drainOutput(2000);
    await this.release();
    const ranks = this.ranks.exits();
    this.resolveDone(
      this.failure
        ? { status: this.failure.status, ranks, error: this.failure.error }
        : this.endedByCheckpoint
          ? { status: EXIT_CHECKPOINTED, ranks, checkpointed: true }
          : { status: 0, ranks },
    );
  }

  /** Gives back everything the job holds: output streams, coordinator, registry entry, socket directory, files, store. */
  private async release(): Promise<void> {
    this.ranks.closeOutput();
    await this.coordinator.close();
    await this.starter.close?.().catch(() => {});
    if (this.options.register !== false) removeJob(this.id);
    removeOwnDir(this.dir);
    this.files?.close();
    this.reserve.discard();
    this.releaseStore();
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
