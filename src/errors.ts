// Every failure ckpt reports is a CkptError with a stable `code`, so scripts
// (and the CLI's one-line error printer) can tell causes apart without parsing text.

export const ErrorCodes = {
  USAGE: 'ECKPT_USAGE',
  INTERNAL: 'ECKPT_INTERNAL',
  /** A fault injected by CKPT_FAULT (tests). */
  FAULT: 'ECKPT_FAULT',
  NATIVE: 'ECKPT_NATIVE',
  // CRIU and checkpointers
  CRIU_NOT_FOUND: 'ECKPT_CRIU_NOT_FOUND',
  CRIU_TOO_OLD: 'ECKPT_CRIU_TOO_OLD',
  CRIU_CHECK_FAILED: 'ECKPT_CRIU_CHECK_FAILED',
  CRIU_FAILED: 'ECKPT_CRIU_FAILED',
  CRIU_PROTOCOL: 'ECKPT_CRIU_PROTOCOL',
  CRIU_INSTALL: 'ECKPT_CRIU_INSTALL',
  CRS_UNKNOWN: 'ECKPT_CRS_UNKNOWN',
  CRS_UNAVAILABLE: 'ECKPT_CRS_UNAVAILABLE',
  SELF_NOT_REGISTERED: 'ECKPT_SELF_NOT_REGISTERED',
  CHECKPOINT_BUSY: 'ECKPT_CHECKPOINT_BUSY',
  CHECKPOINT_FAILED: 'ECKPT_CHECKPOINT_FAILED',
  /** A checkpoint given up because its caller was interrupted (SIGINT, SIGTERM): nothing committed. */
  INTERRUPTED: 'ECKPT_INTERRUPTED',
  // processes
  NO_SUCH_PROCESS: 'ECKPT_NO_SUCH_PROCESS',
  PERMISSION: 'ECKPT_PERMISSION',
  NOT_OWNER: 'ECKPT_NOT_OWNER',
  UNSAFE_PID: 'ECKPT_UNSAFE_PID',
  PID_TAKEN: 'ECKPT_PID_TAKEN',
  SESSION_OUTSIDE: 'ECKPT_SESSION_OUTSIDE',
  /** A file the snapshot's process had open changed after the dump, and CRIU cannot take it back. */
  FILE_CHANGED: 'ECKPT_FILE_CHANGED',
  // snapshots
  SNAPSHOT_MISSING: 'ECKPT_SNAPSHOT_MISSING',
  SNAPSHOT_INCOMPLETE: 'ECKPT_SNAPSHOT_INCOMPLETE',
  SNAPSHOT_FORMAT: 'ECKPT_SNAPSHOT_FORMAT',
  SNAPSHOT_CORRUPT: 'ECKPT_SNAPSHOT_CORRUPT',
  SNAPSHOT_PATH: 'ECKPT_SNAPSHOT_PATH',
  /** A snapshot or store owned by another user, or writable by others: refused before anything is used. */
  SNAPSHOT_OWNER: 'ECKPT_SNAPSHOT_OWNER',
  /** The working directory a restart would start in does not exist here. */
  CWD_MISSING: 'ECKPT_CWD_MISSING',
  NO_SPACE: 'ECKPT_NO_SPACE',
  STORE_IN_USE: 'ECKPT_STORE_IN_USE',
  // jobs
  TIMEOUT: 'ECKPT_TIMEOUT',
  JOB_NOT_FOUND: 'ECKPT_JOB_NOT_FOUND',
  JOB_ABORTED: 'ECKPT_JOB_ABORTED',
  OOB_PROTOCOL: 'ECKPT_OOB_PROTOCOL',
  OOB_AUTH: 'ECKPT_OOB_AUTH',
  OOB_UNREACHABLE: 'ECKPT_OOB_UNREACHABLE',
  COMMAND_NOT_FOUND: 'ECKPT_COMMAND_NOT_FOUND',
  /** A rank could not be started where it was to run. */
  SPAWN_FAILED: 'ECKPT_SPAWN_FAILED',
  // across nodes
  /** --launcher slurm outside an allocation, or without srun. */
  NO_ALLOCATION: 'ECKPT_NO_ALLOCATION',
  /** A node's agent could not start, or its connection was lost. */
  NODE_LOST: 'ECKPT_NODE_LOST',
  /** The store is not one directory every node sees. */
  STORE_NOT_SHARED: 'ECKPT_STORE_NOT_SHARED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface CkptErrorOptions {
  cause?: unknown;
  /** What the user can do about it; printed after the message. */
  hint?: string;
  /** Structured facts for --json output and for tests. */
  details?: Record<string, unknown>;
}

export class CkptError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: CkptErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, ...this.details };
  }
}

export class UsageError extends CkptError {
  constructor(message: string, options?: CkptErrorOptions) {
    super(ErrorCodes.USAGE, message, options);
  }
}

/** A CRIU operation failed; carries CRIU's own `Error` lines and the log's path. */
export class CriuError extends CkptError {
  readonly logPath: string | undefined;
  readonly criuErrors: string[];
  constructor(
    code: ErrorCode,
    message: string,
    options: CkptErrorOptions & { logPath?: string; criuErrors?: string[] } = {},
  ) {
    super(code, message, {
      ...options,
      details: { ...options.details, logPath: options.logPath, criuErrors: options.criuErrors ?? [] },
    });
    this.logPath = options.logPath;
    this.criuErrors = options.criuErrors ?? [];
  }
}

/** A checkpoint aborted on its caller's word (an AbortSignal): nothing was committed, the process left as it was. */
export class InterruptedError extends CkptError {
  constructor(message = 'interrupted; checkpoint aborted', options?: CkptErrorOptions) {
    super(ErrorCodes.INTERRUPTED, message, options);
  }
}

/** Throws an InterruptedError once `signal` is aborted (its reason as the cause). */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw interruption(signal);
}

/** The error an aborted signal stands for: its reason when that is one already. */
export function interruption(signal: AbortSignal, cause?: unknown): InterruptedError {
  const reason: unknown = signal.reason;
  return reason instanceof InterruptedError ? reason : new InterruptedError(undefined, { cause: cause ?? reason });
}

export class SnapshotError extends CkptError {}
export class ProcessError extends CkptError {}
export class JobError extends CkptError {}

/** Node's system errors carry `code` strings such as ENOENT; this reads them safely. */
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

export function isCkptError(err: unknown): err is CkptError {
  return err instanceof CkptError;
}
