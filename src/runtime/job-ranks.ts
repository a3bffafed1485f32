// The ranks of a job as processes: each one started through the job's RankStarter
// (or restored), its output forwarded, its exit awaited; signalled and ended as a
// set. What an exit means for the job is the Job's decision (its hooks).
import { createWriteStream } from 'node:fs';
import { CkptError, ErrorCodes } from '../errors.js';
import type { RejoinInfo } from '../crs/job.js';
import { jobCheckpointer } from '../crs/job-registry.js';
import type { JobSnapshot, Verification } from '../store/store.js';
import type { Exit } from '../util/spawn.js';
import type { OutputMode, RankExit } from './job-types.js';
import { closeQuietly, forwardRankOutput, type RankOutputFiles, type StreamName } from './rank-output.js';
import { restoredRank } from './rankproc.js';
import type { RankProcess, RankSpec, RankStarter } from './starter.js';

interface Held {
  rank: number;
  proc: RankProcess;
  exit?: Exit;
  exited: Promise<Exit>;
  output: Promise<void>[];
}

export interface RankHooks {
  line: (rank: number, stream: StreamName, line: Buffer) => void;
  /** A rank that could not be started: the exit it counts as. */
  startFailed: (rank: number, err: Error) => Exit;
  exit: (exit: RankExit) => void;
}

export class JobRanks {
  private readonly held: Held[] = [];

  constructor(
    private readonly size: number,
    private readonly output: OutputMode,
    private readonly hooks: RankHooks,
  ) {}

  /**
   * Restores every rank of a snapshot whose checkpointer restores ranks itself (criu:
   * crs/criu/job-restore.ts): on other nodes by their agents (which verify their own
   * files), here by the checkpointer; each restored rank is then held like a started one.
   */
  async restore(snapshot: JobSnapshot, starter: RankStarter, rejoin: RejoinInfo, verification: Verification | undefined, files: RankOutputFiles | undefined): Promise<void> {
    const component = jobCheckpointer(snapshot.manifest.crs.name);
    if (!component.restoreRanks) throw new CkptError(ErrorCodes.INTERNAL, `${component.name} does not restore ranks itself`);
    if (starter.restore) return starter.restore(snapshot, { rejoin, onRestored: (rank, proc) => this.hold(rank, proc) });
    await component.restoreRanks(snapshot, {
      rejoin,
      verification,
      ...(files ? { outputFile: (rank: number, stream: 0 | 1) => files.take(rank, stream) } : {}),
      onRestored: (rank, pid, stdout, stderr) => this.hold(rank, restoredRank(pid, stdout, stderr)),
    });
  }

  /** Starts rank `spec.rank` through `starter`, into its --output files when there are. */
  start(starter: RankStarter, spec: Omit<RankSpec, 'stdout' | 'stderr'>, files: RankOutputFiles | undefined): void {
    const fds = files ? [files.take(spec.rank, 0), files.take(spec.rank, 1)] : [];
    if (starter.remote && fds.length) {
      // A rank elsewhere cannot write our files: its forwarded output is written into them here.
      const proc = starter.start({ ...spec, stdout: 'pipe', stderr: 'pipe' });
      proc.stdout?.pipe(createWriteStream('', { fd: fds[0]! }));
      proc.stderr?.pipe(createWriteStream('', { fd: fds[1]! }));
      this.hold(spec.rank, proc, true);
      return;
    }
    let proc: RankProcess;
    try {
      proc = starter.start({ ...spec, stdout: fds[0] ?? 'pipe', stderr: fds[1] ?? 'pipe' });
    } finally {
      // The rank has its own copies of its files.
      for (const fd of fds) closeQuietly(fd);
    }
    this.hold(spec.rank, proc);
  }

  /** Takes a running rank under supervision (a started or restored one). */
  hold(rank: number, proc: RankProcess, outputTaken = false): void {
    const h: Held = { rank, proc, exited: proc.exited.catch((err: Error) => this.hooks.startFailed(rank, err)), output: [] };
    if (!outputTaken) h.output = forwardRankOutput(rank, proc, this.output, (stream, line) => this.hooks.line(rank, stream, line));
    this.held.push(h);
    void h.exited.then((exit) => {
      h.exit = exit;
      // Whatever the rank left in its process group must not outlive it.
      proc.signal('SIGKILL');
      this.hooks.exit({ rank, pid: proc.pid ?? proc.remotePid ?? null, ...exit, ...(proc.lostReason ? { lost: proc.lostReason } : {}) });
    });
  }

  /** Each rank's pid here (undefined while not started, or when it runs elsewhere). */
  pids(): (number | undefined)[] {
    return this.held.map((h) => h.proc.pid);
  }

  /** Each rank's pid here, or its node and pid there. */
  list(): { rank: number; pid: number | null; node?: string }[] {
    return this.held.map((h) => (h.proc.node !== undefined ? { rank: h.rank, pid: h.proc.remotePid ?? null, node: h.proc.node } : { rank: h.rank, pid: h.proc.pid ?? null }));
  }

  /** Every rank of the job has been started and has exited. */
  get allExited(): boolean {
    return this.held.length === this.size && this.held.every((h) => h.exit);
  }

  /** Resolves when every rank held so far has exited. */
  async exited(): Promise<void> {
    await Promise.all(this.held.map((h) => h.exited));
  }

  exits(): RankExit[] {
    return this.held.map((h) => ({ rank: h.rank, pid: h.proc.pid ?? null, ...h.exit! }));
  }

  /** A signal to every live rank. */
  signal(signal: NodeJS.Signals): void {
    for (const h of this.held) if (!h.exit) h.proc.signal(signal);
  }

  /** A signal to rank `rank`, if it is live. */
  signalRank(rank: number, signal: NodeJS.Signals): void {
    for (const h of this.held) if (h.rank === rank && !h.exit) h.proc.signal(signal);
  }

  /** Ends every live rank: SIGTERM, then SIGKILL after `graceMs`. */
  terminate(graceMs: number): void {
    for (const h of this.held) if (!h.exit) void h.proc.terminate(graceMs).catch(() => {});
  }

  /**
   * Waits for the output to end, then closes it. Pipes close when the last writer
   * exits; the bound covers a descendant that escaped the process group with a pipe end.
   */
  async drainOutput(boundMs: number): Promise<void> {
    await Promise.race([Promise.all(this.held.flatMap((h) => h.output)), new Promise((r) => setTimeout(r, boundMs).unref())]);
    this.closeOutput();
  }

  closeOutput(): void {
    for (const h of this.held) {
      h.proc.stdout?.destroy();
      h.proc.stderr?.destroy();
    }
  }
}
