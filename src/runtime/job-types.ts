// What a job is launched with, and what it reports: the job runtime's public types.
import type { Writable } from 'node:stream';
import type { CkptError, JobError } from '../errors.js';
import type { JobSnapshot, Snapshot, Verification } from '../store/store.js';
import type { Exit } from '../util/spawn.js';
import type { Transport } from '../wire/channel.js';
import type { RankStarter } from './starter.js';
import type { Distribution } from './slurm-allocation.js';

export type OutputMode =
  /** `[rank] line` on the given streams (default: this process's stdout/stderr). */
  | { mode: 'prefix'; stdout?: Writable; stderr?: Writable }
  /** One file per rank and stream: DIR/rank-N.out and DIR/rank-N.err. */
  | { mode: 'files'; dir: string }
  /** Only 'output' events. */
  | { mode: 'events' };

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
   * @internal A restart: the snapshot's checksums, being verified while the ranks start
   * (self: the coordinator's welcome waits for them) or are restored (criu: held at post-restore).
   */
  verification?: Verification;
  /**
   * The job's checkpointer: `criu` dumps every rank wherever its code is; `self`
   * saves each rank's state at its safe points. Default: CKPT_CRS when it names
   * one of them, else criu when it can work here, else self.
   */
  crs?: string;
  /** How the ranks are started (default: LocalStarter, each rank a local process group; see `launcher`). */
  starter?: RankStarter;
  /**
   * Where the ranks run: 'local', on this host (default), or 'slurm', across the
   * nodes of the Slurm allocation this runs in, one node agent per node started
   * with srun (OOB over TCP; `bind`: the interface the nodes talk over).
   */
  launcher?: 'local' | 'slurm';
  /** slurm: how many nodes of the allocation (default all, at most one per rank). */
  nodes?: number;
  /** slurm: block (default) or cyclic placement of ranks on nodes. */
  distribution?: Distribution;
  /**
   * --stage DIR (criu): each rank dumps into DIR on its own node; once all have, a
   * checkpoint that continues releases them and the images are copied into the store
   * before the commit. Absolute; a directory on every node (as root: root's, closed
   * to others). Not recorded in snapshots: a restart takes it again.
   */
  stage?: string;
  /** slurm: lines for the user (srun's complaints, a lost node). */
  log?: (line: string) => void;
}

export interface RankExit extends Exit {
  rank: number;
  /** Its pid (on its node, for a rank elsewhere). */
  pid: number | null;
  /** It ended without an exit status of its own: why (its node was lost). */
  lost?: string;
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
