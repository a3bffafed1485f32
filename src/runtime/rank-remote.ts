// A rank that runs on another node, as the launcher holds it: its node's agent
// started it (or restored it) and reports its output and exit over the agent's
// connection; a signal to it is a message to that agent. The Job deals with it
// exactly as with a local rank (starter.ts).
import { PassThrough } from 'node:stream';
import { CkptError, ErrorCodes } from '../errors.js';
import type { Exit } from '../util/spawn.js';
import type { RankProcess } from './starter.js';

/** What a remote rank needs of its node's agent. */
export interface AgentLink {
  readonly node: string;
  signal(rank: number, signal: NodeJS.Signals): boolean;
  terminate(rank: number, graceMs: number): void;
}

export class RemoteRank implements RankProcess {
  readonly pid = undefined;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly exited: Promise<Exit>;
  remotePid: number | undefined;
  /** Why it ended without its node telling (the node was lost). */
  lostReason: string | undefined;
  private agent: AgentLink | undefined;
  private exit: Exit | undefined;
  private resolveExit!: (e: Exit) => void;
  private rejectExit!: (e: Error) => void;

  constructor(readonly rank: number) {
    this.exited = new Promise((resolve, reject) => {
      this.resolveExit = resolve;
      this.rejectExit = reject;
    });
  }

  get node(): string | undefined {
    return this.agent?.node;
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** Its agent started it: pid `pid` on the agent's node. */
  started(agent: AgentLink, pid: number): void {
    this.agent = agent;
    this.remotePid = pid;
  }

  output(stream: 'stdout' | 'stderr', data: Buffer): void {
    if (!this.exit) this[stream].write(data);
  }

  /** It exited on its node (or its node was lost: `signal` SIGKILL). */
  exited_(exit: Exit): void {
    if (this.exit) return;
    this.exit = exit;
    this.stdout.end();
    this.stderr.end();
    this.resolveExit(exit);
  }

  /** Its node was lost: it counts as killed, for this reason. */
  lost(why: string): void {
    if (this.exit) return;
    this.lostReason = why;
    this.exited_({ code: null, signal: 'SIGKILL' });
  }

  /** It could not be started where it was to run. */
  failed(message: string): void {
    if (this.exit) return;
    this.exit = { code: 127, signal: null };
    this.stdout.end();
    this.stderr.end();
    this.rejectExit(new CkptError(ErrorCodes.SPAWN_FAILED, message));
  }

  signal(signal: NodeJS.Signals): boolean {
    return this.agent?.signal(this.rank, signal) ?? false;
  }

  async terminate(graceMs: number): Promise<Exit> {
    if (!this.exit) this.agent?.terminate(this.rank, graceMs);
    return this.exited;
  }
}
