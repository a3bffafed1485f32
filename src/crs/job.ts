// The job-checkpointer interface: what a checkpointer component supplies so that
// whole jobs (ckpt run -n N) can be checkpointed and restored with it. A component
// gives three halves:
//   - the coordinator's: the phases of one job checkpoint up to the commit
//     (begin() → cut(), or abandon() after a failure), run by runtime/checkpoint.ts;
//   - the rank's: a participant of the rank's checkpoint session (rank/checkpoint/),
//     beside the library's own participants (peers: drain, hold, re-link; the
//     library state; the user's hooks);
//   - the restore: how a rank of one of its snapshots starts again (runtime/restart.ts).
// Adding a component for jobs: one folder under crs/ and one line in crs/job-registry.ts
// (docs/ARCHITECTURE.md, "Add a checkpointer"). The protocol: docs/RUNTIME.md.
import type { FileEntry } from '../store/checksum.js';
import type { PendingSnapshot } from '../store/layout.js';
import type { Readable } from 'node:stream';
import type { EndState, RankRecord } from '../store/manifest.js';
import type { JobSnapshot, Verification } from '../store/store.js';
import type { SnapshotWriter } from '../store/writer.js';
import type { CheckpointResult } from './hooks.js';

export type JobPhase = 'prepare' | 'reach' | 'drain' | 'save' | 'dump' | 'commit' | 'resume';

/** What the coordinator's half works with: the ranks, request rounds, the snapshot being written. */
export interface JobCheckpointRun {
  readonly jobId: string;
  readonly ranks: readonly number[];
  /** Each rank's pid as the launcher knows it. */
  readonly pids: readonly number[];
  readonly pending: PendingSnapshot;
  readonly requested: boolean;
  /** What the job does after the commit: with `terminate` a criu rank stays frozen after its dump. */
  readonly then: EndState;
  /** A signal to rank `rank`'s processes (its process group, here or through its node's agent). */
  signalRank(rank: number, signal: NodeJS.Signals): void;
  /** Timeouts: of each request round; of the wait for a safe point (self); of a rank's dump and rejoin (criu). */
  readonly phaseMs: number;
  readonly reachMs: number;
  readonly dumpMs: number;
  /** Enters a phase: progress for the caller, and the coordinator's fault point. */
  phase(name: JobPhase): Promise<void>;
  /** One request to rank `rank`; resolves with the reply (ok), rejects with the rank's error. */
  request(rank: number, op: string, body?: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
  /**
   * One request to every rank at once; the first failure fails the round. A rank for
   * which `reportedAt` gives a safe point is asked nothing (self's reach): its unasked
   * report that it stands there answers, as { written } (its written[] counts);
   * across nodes its agent gathers such reports, one message per node.
   */
  all(op: string, body: (rank: number) => Record<string, unknown>, timeoutMs?: number, reportedAt?: (rank: number) => number | undefined): Promise<Record<string, unknown>[]>;
  /** As all(), but no rank fails the round: each one's reply, or why it has none. */
  allSettled(op: string, body: (rank: number) => Record<string, unknown>, timeoutMs?: number): Promise<(Record<string, unknown> | Error)[]>;
  /** A rank's new connection after it went down for a dump; resolves with its hello. */
  awaitRejoin(rank: number, timeoutMs: number): Promise<Record<string, unknown>>;
  /** The ranks' current peer addresses (after a rejoin they have new ones). */
  peerAddresses(): string[];
  /** A writer for a file of the snapshot's own (not a rank's). */
  writer: SnapshotWriter;
  /**
   * Where rank r writes its part, as the rank names it: through this process's
   * descriptor of the partial snapshot when the rank runs here; by the store's
   * path when it runs on another node (the store is then shared storage); with
   * `staged`, its directory on its own node's disk (--stage DIR).
   */
  rankDir(rank: number): string;
  /**
   * --stage (criu): the ranks dump into node-local directories and neither sync nor
   * checksum their images; the coordinator has them copied into the snapshot after
   * the cut (runtime/checkpoint.ts) and takes the copies' checksums.
   */
  readonly staged: boolean;
  /** Every rank drains by markers with its peers: criu then needs no prepare round. */
  readonly markerDrain: boolean;
}

/** What the coordinator's half hands to the commit. */
export interface JobCut {
  ranks: RankRecord[];
  /** The manifest's `data`. */
  data: Record<string, unknown>;
  /** The component's version, for the manifest's `crs`. */
  version: string;
  /** Files the ranks made durable and checksummed themselves (taken as they are). */
  synced: FileEntry[];
  /** Directories whose entries the ranks wrote (fsynced once by the commit). */
  syncedDirs: string[];
  /** Directories whose every file is among `synced` (CommitOptions.completeDirs). */
  completeDirs?: string[];
  /** Added to every rank's ckpt-resume after the commit. */
  resume?: Record<string, unknown>;
  /** Ranks that stand frozen since their dump (a checkpoint that ends the job): killed after the commit, not resumed. */
  frozen?: number[];
}

/** One job checkpoint in progress, on the coordinator. */
export interface JobCheckpointAttempt {
  cut(): Promise<JobCut>;
  /**
   * After a failure in cut(): what the ranks need to go on. `fatal`: the job cannot
   * (a rank went down for its dump and did not come back).
   */
  abandon(): Promise<{ fatal: boolean; resume?: Record<string, unknown> }>;
}

/** The parts of a rank a component's rank half acts on (supplied by ckpt/rank). */
export interface RankHost {
  readonly rank: number;
  readonly size: number;
  readonly isFinalized: boolean;
  /** Safe points passed so far. */
  readonly safePoints: number;
  /** The library's own state, as a self checkpoint saves it. */
  captureLibrary(): unknown;
  /**
   * criu: the rank leaves the job for its dump (replies `reply` to the request,
   * closes its peer connections and, unless it keeps it (keptConnection), its
   * coordinator connection), `dump()` runs, then the rank rejoins — the same
   * coordinator (on the kept connection if it has one), or a restarted job's.
   * `handOff`: `dump` gets a descriptor of the coordinator connection (its own to
   * close), kept open past the rank's going down — for a rank that stays frozen
   * after its dump, whose report someone else sends (crs/criu/job-rank.ts).
   * `dump` calls `back()` once the original runs again (its images not yet durable):
   * the rank begins listening for its peers meanwhile.
   */
  goDown(reply: () => Promise<void>, dump: DumpRun, handOff?: boolean): Promise<void>;
  /**
   * criu: the coordinator connection goDown keeps open across the dump (`socket:[ino]`,
   * a unix socket: CRIU takes it as external, a restore hands in a stand-in), or
   * undefined (TCP: closed, and made anew after the dump).
   */
  keptConnection(): string | undefined;
}

/**
 * What a restored rank learns on waking: where its new coordinator is, the job's id
 * and secret; and, restored on another node, the address it listens on there.
 */
export interface RejoinInfo {
  coord: string;
  job: string;
  secret: string;
  peerHost?: string;
}

/** The dump itself, run by goDown: `back()` once the original runs again. */
export type DumpRun = (coordinatorFd: number | undefined, back: () => void) => Promise<DownOutcome>;

/** How a dump ended, for the rejoin. */
export interface DownOutcome {
  restored: boolean;
  /** A restored copy: where its new coordinator is. */
  rejoin?: RejoinInfo;
  /** The original: its rejoin hello's report (dumped ok/error, dumpMs, files). */
  report?: Record<string, unknown>;
}

/** A checkpoint as a rank's participants see it. */
export interface RankSession {
  readonly seq: number;
  readonly store: string;
  readonly dir: string;
  readonly crs: string;
  /** Fails once the checkpoint is over (aborted): checked before every write into the snapshot. */
  check(): void;
  /** Waits for `promise` unless the checkpoint ends first (then fails). */
  until<T>(promise: Promise<T>): Promise<T>;
  /** The error of a checkpoint that is over (aborted). */
  endedError(): Error;
  /** A writer for this rank's directory in the snapshot. */
  writer(rankDir: string): SnapshotWriter;
  /** self: the program's own way from the prepare to the target safe point (ms), its wait for the target left out. */
  readonly reachMs?: number;
}

/** A component's rank half. Each method may add fields to the phase's reply. */
export interface RankCheckpointer {
  /** self: the rank stops at a common safe point; criu: it is taken wherever it is. */
  readonly atSafePoint: boolean;
  prepare?(s: RankSession): Promise<Record<string, unknown>>;
  /**
   * criu, a checkpoint begun at the dump request: called with that request once the
   * rank's markers are sent, to ready what does not wait for the drain (its record,
   * directory and rejoin pipe) while its peers' markers come in. Never throws: a
   * failure is checkpoint()'s to report.
   */
  ahead?(s: RankSession, request: Record<string, unknown>): void;
  /** self: ckpt-save; criu: ckpt-dump. */
  checkpoint(s: RankSession, request: Record<string, unknown>, reply: (body: Record<string, unknown>) => Promise<void>): Promise<Record<string, unknown> | undefined>;
  /** The checkpoint is over for this rank (committed or aborted). */
  end?(s: RankSession): void;
  /** A rank started from one of this component's snapshots, at its first safe point (self) or after its restore (criu). */
  restarted?(): Promise<CheckpointResult>;
}

/** What a component that restores ranks itself (criu) gets from the restarted job. */
export interface RankRestoreContext {
  /** Only these ranks (a node agent restores its node's); default every rank. */
  ranks?: readonly number[];
  /** What each rank learns on waking: where its new coordinator is, the job's id and secret. */
  rejoin: RejoinInfo;
  /** --output DIR: the fd of rank r's stdout (0) or stderr (1) file; without it, pipes the job reads. */
  outputFile?: (rank: number, stream: 0 | 1) => number;
  /** Rank r runs again (its pid, the read ends of its new output pipes): from then on it is the job's. */
  onRestored(rank: number, pid: number, stdout: Readable | null, stderr: Readable | null): void;
  /** The snapshot's checksums, being verified: no restored rank runs before they matched (store/verify.ts). */
  verification?: Verification;
}

/** A component that can checkpoint jobs. */
export interface JobCheckpointer {
  readonly name: string;
  begin(run: JobCheckpointRun): JobCheckpointAttempt;
  rank(host: RankHost): RankCheckpointer;
  /** Validates this component's fields of a rank record read from a manifest. */
  validateRank(record: Record<string, unknown>, where: string): void;
  /** Whether it works here; its version (for the manifest). Fails with the reason. */
  probe(): Promise<{ version: string }>;
  /**
   * Brings back every rank of one of its snapshots (criu: restored as the caller's
   * children). Without it, the ranks start afresh and read their part of the
   * snapshot (self: CKPT_RESTART_SNAPSHOT).
   */
  restoreRanks?(snapshot: JobSnapshot, ctx: RankRestoreContext): Promise<void>;
}

/**
 * An attempt whose coordinator half is loaded on first use: every rank imports the
 * job registry, and a rank never runs a coordinator's phases.
 */
export function lazyAttempt(load: () => Promise<JobCheckpointAttempt>): JobCheckpointAttempt {
  let attempt: Promise<JobCheckpointAttempt> | undefined;
  const get = () => (attempt ??= load());
  return {
    cut: async () => (await get()).cut(),
    abandon: async () => (await get()).abandon(),
  };
}
