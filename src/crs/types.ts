// The CRS (checkpoint/restart service) interface: every checkpointer — criu, self,
// none — implements it, and the framework picks one by name or by priority.
import type { ErrorCode } from '../errors.js';
import type { ProcessRecord } from '../store/manifest.js';
import type { PendingSnapshot, ProcessSnapshot, Snapshot, Verification } from '../store/store.js';

export interface Availability {
  ok: boolean;
  /** The checkpointer's version when available (CRIU's, or ckpt's for self/none). */
  version?: string;
  /** Why it cannot work here. */
  reason?: string;
  /** What to do about it. */
  hint?: string;
  /** The specific error code for why not (e.g. ECKPT_CRIU_NOT_FOUND); default ECKPT_CRS_UNAVAILABLE. */
  code?: ErrorCode;
  /** Extra facts for `ckpt doctor --json`. */
  details?: Record<string, unknown>;
}

/** What a checkpointer needs to snapshot the calling process. */
export interface SelfCheckpointRequest {
  pending: PendingSnapshot;
  /** The process as it will be recorded (argv, env, stdio…); components may add CRIU flags. */
  record: ProcessRecord;
  onProgress?: (message: string) => void;
}

export interface SelfCheckpointOutcome {
  /** `continue`: this is the original process. `restart`: a process restored from the snapshot. */
  state: 'continue' | 'restart';
  /** Component facts for the manifest. */
  data?: Record<string, unknown>;
}

/** What a checkpointer needs to snapshot another process tree from outside. */
export interface ProcessCheckpointRequest {
  pid: number;
  pending: PendingSnapshot;
  record: ProcessRecord;
  /** Leave the tree running (continue) or stopped (stop, and terminate after commit). */
  leave: 'running' | 'stopped';
  /**
   * The stopped tree will be killed once the snapshot is committed (terminate): its
   * TCP connections may stay locked for a silent kill. Otherwise (stop) they must
   * work again when the tree is continued.
   */
  thenKill?: boolean;
  /**
   * With thenKill: commits the snapshot (given the component's data) while the dumped
   * tree is still frozen, so that a throw can roll the dump back (connections out of
   * repair mode, network unlocked, tree running on); that throw is the checkpoint's error.
   */
  commitFrozen?: (data: Record<string, unknown>) => Promise<void>;
  onProgress?: (message: string) => void;
  /** CRIU's action-script stages (pre-dump, post-dump, network-lock…): false or a throw aborts. */
  onNotify?: NotifyHook;
  /**
   * Aborted: the dump is given up at CRIU's next stage (at the latest post-dump, once the
   * images are written), CRIU lets the tree run on, and the request throws InterruptedError.
   */
  signal?: AbortSignal;
  /** From the component's prepareProcessCheckpoint(): the request takes it over, used or not. */
  prepared?: PreparedCheckpoint;
}

/** What a component started ahead of a checkpointProcess() call (CRIU: its worker process). */
export interface PreparedCheckpoint {
  /** Ends it unused; nothing once a request has taken it. Idempotent. */
  dispose(): void;
}

/** A hook at one of CRIU's action-script stages; returning false (or throwing) makes CRIU abort. */
export type NotifyHook = (stage: string, pid: number | undefined) => void | boolean | Promise<void | boolean>;

export interface RestartRequest {
  snapshot: ProcessSnapshot;
  /** Foreground: the restored process writes to our stdio and is our child; detached: to a log file. */
  detach: boolean;
  /** Where a detached process's output goes (and, in the foreground, its stdout and stderr: appended). */
  logFile?: string;
  /** Its stdout (fd 1) goes to this file, appended (a pipe, or a file it wrote before). */
  stdoutFile?: string;
  /** Its stderr (fd 2) likewise. */
  stderrFile?: string;
  onProgress?: (message: string) => void;
  /** CRIU's restore stages (pre-restore, post-restore, pre-resume, post-resume). */
  onNotify?: NotifyHook;
  /** Start the program as this user (root restarting another user's snapshot: never with more privilege than its writer). */
  runAs?: { uid: number };
  /** Variables a fresh start takes from the current environment besides those that say where it runs (store/env.ts). */
  envRefresh?: string[];
  /**
   * The snapshot's checksums, being verified meanwhile: no code of the restored
   * process may run before it resolves (CRIU holds the tree at post-restore); if it
   * rejects, nothing restored is left and the restart fails with its error.
   */
  verification?: Verification;
  /**
   * Post-copy: the tree runs before its memory is read; CRIU's lazy-pages daemon
   * (started here, outliving a detached restart) fills it. Only where lazyRestore() allows.
   */
  lazy?: boolean;
}

export interface ProcessExit {
  code: number | null;
  signal: string | null;
  /** Why it failed, when ckpt knows more than the status (a restarted job's abort). */
  error?: Error;
}

export interface RestartedProcess {
  pid: number;
  /** A lazy restore: the daemon that fills the memory (killed before it is done, the pages it had not copied read as zeros). */
  lazyPages?: { pid: number; log: string };
  /** Resolves when the restored process exits (foreground restarts only). */
  wait(): Promise<ProcessExit>;
}

export interface Checkpointer {
  readonly name: string;
  /** Higher wins in automatic selection among available components. */
  readonly priority: number;
  /** Transparent checkpointers snapshot any process; others need the program's cooperation. */
  readonly transparent: boolean;
  probe(): Promise<Availability>;
  checkpointSelf(request: SelfCheckpointRequest): Promise<SelfCheckpointOutcome>;
  /** Only transparent checkpointers can snapshot another process. */
  checkpointProcess?(request: ProcessCheckpointRequest): Promise<{ data?: Record<string, unknown> }>;
  /**
   * Starts what checkpointProcess() will need (CRIU: its worker, whose exec and start-up
   * then overlap the caller's look at the tree and its opening of the store).
   */
  prepareProcessCheckpoint?(): Promise<PreparedCheckpoint>;
  restart(request: RestartRequest): Promise<RestartedProcess>;
  /** Whether restart() can take `lazy` here: undefined if so, else why not. Absent: never. */
  lazyRestore?(): Promise<string | undefined>;
  /** A program restarted afresh from one of its snapshots (self): hands it the saved state. */
  loadState?(snapshotDir: string, data: Record<string, unknown>): Promise<void>;
  /**
   * What only this snapshot still needs outside it (criu: the nftables lock table of a
   * dump that killed its process): read before the snapshot is removed; the returned
   * cleanup runs after and says what it removed.
   */
  prepareRemoval?(snapshot: Snapshot): (() => Promise<string | undefined>) | undefined;
}
