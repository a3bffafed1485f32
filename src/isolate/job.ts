// A running isolated job as its launcher (`ckpt run --isolate`) or its restarter
// (`ckpt restart`) sees it: registered for `ckpt ps`, output followed, ended as a
// whole. The job's pid 1 is the handle: SIGTERM to it is forwarded to the command,
// SIGKILL to it ends every process of the pid namespace at once.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Writable } from 'node:stream';
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import { childrenOf, processTree } from '../util/procfs.js';
import { isAlive, signalPid } from '../util/signals.js';
import { shellStatus } from '../util/exit-status.js';
import { EXIT_CHECKPOINTED, findJob, processStartTime, removeJob, writeJob, type JobRecord, type JobState } from '../registry/jobs.js';
import { followOutput, removeOutputDir } from './output.js';

export interface IsolatedExit {
  /** The job's exit status: the command's, or 128+N when it was killed by signal N. */
  status: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It ended at its own checkpoint (`--term`): `status` is EXIT_CHECKPOINTED. */
  checkpointed?: boolean;
}

export interface IsolatedJobInit {
  id: string;
  name: string;
  command: string[];
  rootPid: number;
  ioDir: string;
  net: boolean;
  restoredFrom?: string;
  /** Its periodic checkpoints (run by its supervisor), recorded for its snapshots. */
  schedule?: { intervalMs: number; keep?: number };
  /** mpirun across nodes: the other nodes' parts known at the start (a restored head). */
  parts?: { host: string; name: string }[];
  /** Resolves when pid 1 of the job has exited. */
  waitRoot: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output?: { stdout?: Writable; stderr?: Writable };
  register?: boolean;
  killGraceMs?: number;
}

/** pid 1 of every isolated job this process launched or restored and that still runs. */
export const liveRoots = new Set<number>();

export class IsolatedJob {
  readonly id: string;
  readonly name: string;
  readonly rootPid: number;
  readonly rootStart: number;
  readonly ioDir: string;
  readonly net: boolean;
  readonly startedAt = Date.now();
  state: JobState = 'running';
  /** mpirun across nodes: the other nodes' parts (node-parts.ts), recorded for `ckpt checkpoint`. */
  private readonly parts: { host: string; name: string }[];
  private readonly done: Promise<IsolatedExit>;
  private ending: Promise<void> | undefined;

  constructor(private readonly init: IsolatedJobInit) {
    this.id = init.id;
    this.name = init.name;
    this.rootPid = init.rootPid;
    this.rootStart = processStartTime(init.rootPid) ?? 0;
    this.ioDir = init.ioDir;
    this.net = init.net;
    this.parts = [...(init.parts ?? [])];
    const follower = followOutput(init.ioDir, init.output?.stdout, init.output?.stderr);
    liveRoots.add(this.rootPid);
    this.persist();
    this.done = init.waitRoot().then(({ code, signal }) => {
      this.state = 'exited';
      liveRoots.delete(this.rootPid);
      follower.stop();
      // (How pid 1's end is reported varies: a signal, or bash's 128+N.)
      const checkpointed = this.endedByCheckpoint();
      if (init.register !== false) removeJob(this.id);
      removeOutputDir(init.ioDir);
      return checkpointed ? { status: EXIT_CHECKPOINTED, code, signal, checkpointed } : { status: shellStatus({ code, signal }), code, signal };
    });
  }

  wait(): Promise<IsolatedExit> {
    return this.done;
  }

  /** A checkpoint with --term marked our registry entry before it killed the job. */
  private endedByCheckpoint(): boolean {
    try {
      return findJob(this.id).checkpointedSeq !== undefined;
    } catch {
      return false;
    }
  }

  /** Host pid of the command (pid 1's child), while it runs. */
  get commandPid(): number | undefined {
    return childrenOf(this.rootPid)[0];
  }

  private rootIsOurs(): boolean {
    return this.state !== 'exited' && isAlive(this.rootPid) && processStartTime(this.rootPid) === this.rootStart;
  }

  /** Ends the job: SIGTERM to the command (through pid 1), SIGKILL to the namespace after `graceMs`. */
  end(graceMs = this.init.killGraceMs ?? 2000): Promise<void> {
    if (this.ending) return this.ending;
    if (this.state === 'exited') return Promise.resolve();
    this.state = 'aborting';
    this.persist();
    if (this.rootIsOurs()) {
      signalPid(this.rootPid, 'SIGTERM');
      // A job left stopped by a checkpoint must run to act on it.
      for (const pid of processTree(this.rootPid)) signalPid(pid, 'SIGCONT');
    }
    this.ending = (async () => {
      const timer = sleep(graceMs).then(() => 'timeout' as const);
      const which = await Promise.race([this.done.then(() => 'done' as const), timer]);
      if (which === 'timeout') this.kill();
      await this.done;
    })();
    return this.ending;
  }

  /** A part of this job on another node has started. */
  addPart(part: { host: string; name: string }): void {
    this.parts.push(part);
    this.persist();
  }

  /** SIGKILL to pid 1: the kernel ends every process of the job's pid namespace. */
  kill(): void {
    if (this.rootIsOurs()) signalPid(this.rootPid, 'SIGKILL');
  }

  record(): JobRecord {
    return {
      kind: 'isolated',
      isolated: {
        rootPid: this.rootPid,
        rootStart: this.rootStart,
        ioDir: this.ioDir,
        net: this.net,
        ...(this.init.restoredFrom ? { restoredFrom: this.init.restoredFrom } : {}),
        ...(this.init.schedule ? { schedule: this.init.schedule } : {}),
        ...(this.parts.length ? { parts: [...this.parts] } : {}),
      },
      id: this.id,
      name: this.name,
      size: 1,
      oob: 'unix',
      address: '',
      dir: this.ioDir,
      secret: '',
      pid: process.pid,
      pidStart: processStartTime(process.pid) ?? 0,
      command: this.init.command,
      ranks: [{ rank: 0, pid: this.rootPid }],
      state: this.state,
      startedAt: this.startedAt,
    };
  }

  private persist(): void {
    if (this.init.register === false || this.state === 'exited') return;
    try {
      writeJob(this.record());
    } catch {
      // The registry serves ps/kill/checkpoint; the job runs without it.
    }
  }
}

/** The registry entry of a running isolated job (by id, id prefix or name). */
export function findIsolatedJob(query: string): JobRecord & { isolated: NonNullable<JobRecord['isolated']> } {
  const job = findJob(query);
  if (job.kind !== 'isolated' || !job.isolated) {
    throw new JobError(ErrorCodes.USAGE, `job ${job.id} is not an isolated job (started with ckpt run -n, not --isolate)`);
  }
  return job as JobRecord & { isolated: NonNullable<JobRecord['isolated']> };
}

/** Is pid 1 of this isolated job still the process the registry names? */
export function isolatedRootAlive(job: JobRecord): boolean {
  const iso = job.isolated;
  return !!iso && isAlive(iso.rootPid) && processStartTime(iso.rootPid) === iso.rootStart;
}

/**
 * `ckpt kill` for an isolated job. Without a signal the job is ended: through its
 * launcher when that is alive (it ends the job in order and reports), else here
 * (SIGTERM to the command, SIGKILL to the namespace after `graceMs`). With a signal,
 * the signal goes to the command (pid 1's child).
 */
export async function killIsolatedJob(job: JobRecord, signal?: NodeJS.Signals, graceMs = 2000): Promise<void> {
  const iso = job.isolated;
  if (!iso) throw new CkptError(ErrorCodes.INTERNAL, `job ${job.id} has no isolation record`);
  if (!isolatedRootAlive(job)) return;
  if (signal) {
    const cmd = childrenOf(iso.rootPid)[0];
    if (cmd && cmd > 1) signalPid(cmd, signal);
    return;
  }
  const launcherAlive = isAlive(job.pid) && processStartTime(job.pid) === job.pidStart;
  if (launcherAlive && job.pid !== process.pid) {
    signalPid(job.pid, 'SIGTERM');
    return;
  }
  signalPid(iso.rootPid, 'SIGTERM');
  for (const pid of processTree(iso.rootPid)) signalPid(pid, 'SIGCONT');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && isolatedRootAlive(job)) await sleep(50);
  if (isolatedRootAlive(job)) signalPid(iso.rootPid, 'SIGKILL');
}
