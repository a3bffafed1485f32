// The rank starter seam: how the launcher gets a rank running and holds it. The
// job asks a RankStarter to start each rank and from then on deals only with the
// RankProcess it got back — its output streams, its exit, signals to it — never
// with how or where it runs. LocalStarter (starter-local.ts) runs every rank here
// as a process group of its own; another starter may run ranks elsewhere (one
// agent per node starting that node's ranks) behind the same two interfaces.
import type { Duplex, Readable } from 'node:stream';
import type { JobSnapshot } from '../store/store.js';
import type { Exit } from '../util/spawn.js';
import type { Channel } from '../wire/channel.js';
import type { AgentHello } from '../wire/agent-messages.js';
import type { FileEntry } from '../store/checksum.js';
import type { StageItem } from './stage-copy.js';

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
  /** Where it runs, when that is not here: the node's name (its pid there is `remotePid`). */
  readonly node?: string;
  readonly remotePid?: number;
  /** Why it ended without an exit status of its own (its node was lost). */
  readonly lostReason?: string;
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

/** What a starter learns of its job before the first rank starts (attach). */
export interface StarterContext {
  jobId: string;
  secret: string;
  size: number;
  /** The coordinator's address, as ranks and node agents reach it. */
  coordinator: string;
  /** The job's snapshot store: a starter that runs ranks elsewhere checks they all see it. */
  store: string;
  /** --stage DIR: a starter that runs ranks elsewhere checks it is usable on every node. */
  stage?: string;
  /** Connections whose hello says role 'agent' go to `handler` from now on. */
  acceptAgents(handler: (channel: Channel, hello: AgentHello) => void): void;
  /** A rank connection an agent relays, dialed at the agent's relay `to`: admitted like a socket of its own. */
  admitRelayed(stream: Duplex, to: string): void;
}

/** Restoring ranks where they are to run (a starter that runs them elsewhere does it there). */
export interface StarterRestoreContext {
  /** What each restored rank learns on waking: its new coordinator, the job's id and secret. */
  rejoin: { coord: string; job: string; secret: string };
  onRestored(rank: number, proc: RankProcess): void;
}

export interface RankStarter {
  /** Starts one rank. A command that cannot be run shows as `exited` rejecting. */
  start(spec: RankSpec): RankProcess;
  /** Before the first start or restore (e.g. the node agents are up). Fails with a clear error. */
  attach?(ctx: StarterContext): Promise<void>;
  /** Ranks run on other hosts: they write snapshot files by path, and --output files are not theirs to open. */
  readonly remote?: boolean;
  /** Restores the ranks of a snapshot whose checkpointer restores them (criu), each where it is to run. */
  restore?(snapshot: JobSnapshot, ctx: StarterRestoreContext): Promise<void>;
  /** One request/reply round with every node agent at once (starters with agents). */
  ping?(): Promise<void>;
  /**
   * --stage: copies the staged ranks `items` into the pending snapshot where they ran
   * (each node's agent, its node's), or with `discard` only removes them. Without it
   * the ranks run here and the coordinator copies them itself. `stage`: DIR, where each
   * node first sweeps what writers that are gone left (store/stage-sweep.ts).
   */
  stageCopy?(items: StageItem[], discard: boolean, timeoutMs: number, stage: string): Promise<{ rank: number; files: FileEntry[] }[]>;
  /** --stage: the tag of the process that will copy rank r's staged images (its node's agent), if it has one. */
  stageWriter?(rank: number): string | undefined;
  /** The job has ended: gives back what the starter holds (its agents end). */
  close?(): Promise<void>;
}
