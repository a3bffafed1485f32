// The rank starter seam: how the launcher gets a rank running and holds it. The
// job asks a RankStarter to start each rank and from then on deals only with the
// RankProcess it got back — its output streams, its exit, signals to it — never
// with how or where it runs. LocalStarter (starter-local.ts) runs every rank here
// as a process group of its own; another starter may run ranks elsewhere (one
// agent per node starting that node's ranks) behind the same two interfaces.
import type { Readable } from 'node:stream';
import type { Exit } from '../util/spawn.js';

/** Where a rank's stdout or stderr goes: a pipe the job reads, or a file it opened (an fd). */
export type RankOutput = 'pipe' | number;

export interface RankSpec {
  rank: number;
  command: string;
  args: readonly string[];
  /** The rank's whole environment (CKPT_RANK, CKPT_COORD… included). */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** An fd given here is the caller's: the rank gets its own copy, the caller closes it after start(). */
  stdout: RankOutput;
  stderr: RankOutput;
}

export interface RankProcess {
  /** The rank's process here, if it runs here (undefined: a spawn that failed, or a rank elsewhere). */
  readonly pid: number | undefined;
  /** Its output when started with 'pipe' (null otherwise). */
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves when the rank has exited (rejects when it could not be started). */
  readonly exited: Promise<Exit>;
  readonly hasExited: boolean;
  /**
   * Signals the rank with everything it started (its process group), also after the
   * rank itself has exited, so that nothing it left behind outlives it. False if none is left.
   */
  signal(signal: NodeJS.Signals): boolean;
  /** Ends the rank: SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  terminate(graceMs: number): Promise<Exit>;
}

export interface RankStarter {
  /** Starts one rank. A command that cannot be run shows as `exited` rejecting. */
  start(spec: RankSpec): RankProcess;
}
