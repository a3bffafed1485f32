// SlurmStarter: ranks across the nodes of a Slurm allocation. One `srun` step
// starts a node agent on each node (`ckpt` agent: src/agent/), as orted was to
// mpirun; each agent connects back to the job's coordinator, and starts,
// supervises, signals and restores its node's ranks on the coordinator's word.
// Ranks reach the coordinator and each other over TCP on their node's address.
import { spawn, type ChildProcess } from 'node:child_process';
import { envFlag } from '../config.js';
import { CkptError, ErrorCodes } from '../errors.js';
import type { JobSnapshot } from '../store/store.js';
import { resolveCommand } from '../util/command.js';
import { UNPUBLISHED_INSPECTOR } from '../util/inspector.js';
import { trustedTool } from '../util/trusted-tool.js';
import { builtEntry } from '../util/package-root.js';
import type { Exit } from '../util/spawn.js';
import type { AgentHello } from '../wire/agent-messages.js';
import type { Channel } from '../wire/channel.js';
import { NodeAgentLink } from './node-agent-link.js';
import { RemoteRank } from './rank-remote.js';
import { placeRanks, slurmAllocation, type Distribution } from './slurm-allocation.js';
import { checkStoreShared, restoreOnNodes, stageCopyOnNodes } from './slurm-nodes.js';
import type { StageItem } from './stage-copy.js';
import type { FileEntry } from '../store/checksum.js';
import type { RankProcess, RankSpec, RankStarter, StarterContext, StarterRestoreContext } from './starter.js';

export interface SlurmStarterOptions {
  /** Nodes to run on (default: every node of the allocation, at most one per rank). */
  nodes?: number;
  distribution?: Distribution;
  /** The address (or interface's address) ranks listen on for their peers, on every node. */
  bind?: string;
  /** The environment the allocation is read from and srun runs with (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** How long every agent has to connect (ms, default 60 s). */
  agentStartMs?: number;
  /** Lines for the user (srun's own complaints, a lost node). */
  log?: (line: string) => void;
}

/** The agent's entry point: a file of the build this runs from, not an import (the agent is a layer above). */
export const agentMain = (): string => builtEntry('agent/main', true);

export class SlurmStarter implements RankStarter {
  readonly remote = true;
  private placement: number[] = [];
  private agents: (NodeAgentLink | undefined)[] = [];
  private srun: ChildProcess | undefined;
  private srunExit: Promise<Exit> | undefined;
  /** srun's last lines (its own and the agents' stderr), for a failed start's message. */
  private srunTail: string[] = [];
  /** Lines held until every agent is up: a failed start folds them into its one error line. */
  private held: string[] | undefined = [];
  /** The restore in progress: ranks the agents report restored become the job's. */
  private restoring: StarterRestoreContext | undefined;
  private ctx: StarterContext | undefined;
  /** The job is ending: agents' connections close on purpose. */
  private closing = false;

  constructor(private readonly o: SlurmStarterOptions = {}) {}

  /** The node each rank runs on (after attach). */
  get nodes(): string[] {
    return this.placement.map((i) => this.agents[i]?.node ?? `node ${i}`);
  }

  async attach(ctx: StarterContext): Promise<void> {
    const env = this.o.env ?? process.env;
    const alloc = slurmAllocation(env);
    let srun: string;
    try {
      srun = resolveCommand(trustedTool('srun', env.PATH ?? ''), env.PATH ?? '');
    } catch (err) {
      if ((err as CkptError).code === ErrorCodes.PERMISSION) throw err;
      throw new CkptError(ErrorCodes.NO_ALLOCATION, '--launcher slurm needs srun, and it is not in PATH');
    }
    if (this.o.nodes !== undefined && this.o.nodes > alloc.nodes) {
      throw new CkptError(ErrorCodes.USAGE, `-N ${this.o.nodes}: the allocation has ${alloc.nodes} node${alloc.nodes > 1 ? 's' : ''}`);
    }
    const count = Math.min(this.o.nodes ?? alloc.nodes, ctx.size);
    this.placement = placeRanks(ctx.size, count, { distribution: this.o.distribution, tasksPerNode: alloc.tasksPerNode, ...(count === alloc.nodes ? { tasks: alloc.tasks } : {}) });
    this.agents = Array.from({ length: count });
    this.ctx = ctx;
    const all = new Promise<void>((resolve, reject) => {
      ctx.acceptAgents((channel, hello) => {
        try {
          this.admit(channel, hello, count);
        } catch (err) {
          channel.fail(err as CkptError);
          return;
        }
        if (this.agents.every(Boolean)) resolve();
      });
      this.spawnAgents(srun, count, env, ctx);
      void this.srunExit!.then((e) =>
        reject(new CkptError(ErrorCodes.NODE_LOST, `the node agents could not start: srun ended (${e.signal ?? `status ${e.code}`})${this.startFailure()}`)),
      );
    });
    const ms = this.o.agentStartMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const missing = this.agents.flatMap((a, i) => (a ? [] : [i]));
        reject(new CkptError(ErrorCodes.NODE_LOST, `the node agents of node${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not connect within ${ms} ms${this.startFailure()}`));
      }, ms);
    });
    try {
      await Promise.race([all, late]);
      // Up: what srun said meanwhile (warnings) is the user's to read, as all it says from now on.
      for (const line of this.held ?? []) this.o.log?.(line);
      this.held = undefined;
      await checkStoreShared(ctx.store, ctx.jobId, this.agents as NodeAgentLink[], ctx.stage);
    } catch (err) {
      await this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  start(spec: RankSpec): RankProcess {
    const rank = new RemoteRank(spec.rank);
    const agent = this.agents[this.placement[spec.rank] ?? -1];
    if (!agent || agent.isLost) {
      rank.failed(`no node agent for rank ${spec.rank}`);
      return rank;
    }
    const env = Object.fromEntries(Object.entries(spec.env).filter((e): e is [string, string] => e[1] !== undefined));
    const { rank: r, command, args, cwd } = spec;
    agent.start(rank, { rank: r, command, args: [...args], env, ...(cwd ? { cwd } : {}) }, 60_000).catch((err: Error) => rank.failed(err.message));
    return rank;
  }

  async restore(snapshot: JobSnapshot, ctx: StarterRestoreContext): Promise<void> {
    this.restoring = ctx;
    try {
      await restoreOnNodes(snapshot, ctx, this.agents as NodeAgentLink[], this.placement);
    } finally {
      this.restoring = undefined;
    }
  }

  stageCopy(items: StageItem[], discard: boolean, timeoutMs: number, stage: string): Promise<{ rank: number; files: FileEntry[] }[]> {
    return stageCopyOnNodes(items, discard, this.agents as NodeAgentLink[], this.placement, timeoutMs, stage);
  }

  stageWriter(rank: number): string | undefined {
    return this.agents[this.placement[rank] ?? -1]?.writer;
  }

  async ping(): Promise<void> {
    await Promise.all(this.agents.map((a) => a?.request('ping', {}, 30_000, `node ${a.node} to answer a ping`)));
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const a of this.agents) a?.close();
    const srun = this.srun;
    if (!srun || !this.srunExit) return;
    // The agents end when their connection closes, and srun with them; a stuck step is ended by srun's own signals.
    const ended = await Promise.race([this.srunExit.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000).unref())]);
    if (!ended) {
      srun.kill('SIGTERM');
      await Promise.race([this.srunExit, new Promise((r) => setTimeout(r, 5_000).unref())]);
      srun.kill('SIGKILL');
    }
  }

  private admit(channel: Channel, hello: AgentHello, count: number): void {
    const i = hello.nodeIndex;
    if (i >= count) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `node agent ${i} of ${count}?`);
    if (this.agents[i]) throw new CkptError(ErrorCodes.OOB_AUTH, `node agent ${i} is already connected`);
    this.agents[i] = new NodeAgentLink(
      channel,
      hello,
      (rank, pid, agent) => {
        if (!this.restoring || this.placement[rank] !== i) return undefined;
        const r = new RemoteRank(rank);
        r.started(agent, pid);
        this.restoring.onRestored(rank, r);
        return r;
      },
      (agent, why, live) => {
        if (!this.closing && live.length) this.o.log?.(`ckpt: ${why} (rank${live.length > 1 ? 's' : ''} ${live.join(', ')})`);
      },
      (stream, to) => this.ctx?.admitRelayed(stream, to),
    );
  }

  private spawnAgents(srun: string, count: number, env: NodeJS.ProcessEnv, ctx: StarterContext): void {
    // As root, each agent is pid 1 of a fresh pid namespace: its ranks cannot outlive it,
    // and a criu rank restored on any node finds its pids free there (see agent/pid-bands.ts).
    const pidns = process.getuid?.() === 0 && envFlag('CKPT_AGENT_PIDNS', env);
    const agent = [process.execPath, UNPUBLISHED_INSPECTOR, agentMain()];
    const argv = [
      `--nodes=${count}`,
      `--ntasks=${count}`,
      '--ntasks-per-node=1',
      '--kill-on-bad-exit=1',
      '--overlap',
      '--mpi=none',
      `--job-name=ckpt-agents-${ctx.jobId}`,
      ...(pidns ? [trustedTool('unshare', env.PATH ?? ''), '--pid', '--fork', '--mount-proc', '--kill-child', '--'] : []),
      ...agent,
    ];
    const child = spawn(srun, argv, {
      env: { ...env, CKPT_AGENT_COORD: ctx.coordinator, CKPT_JOB_ID: ctx.jobId, CKPT_JOB_SECRET: ctx.secret, ...(this.o.bind ? { CKPT_AGENT_BIND: this.o.bind } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.srun = child;
    this.srunExit = new Promise((resolve) => {
      child.on('error', (err) => {
        this.srunLine(err.message);
        resolve({ code: 127, signal: null });
      });
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
    for (const s of [child.stdout!, child.stderr!]) {
      let partial = '';
      s.setEncoding('utf8').on('data', (d: string) => {
        const lines = (partial + d).split('\n');
        partial = lines.pop()!;
        for (const line of lines) this.srunLine(line);
      });
      s.on('end', () => this.srunLine(partial));
    }
  }

  private srunLine(line: string): void {
    if (!line.trim()) return;
    const shown = line.startsWith('srun') ? line : `srun: ${line}`;
    this.srunTail = [...this.srunTail, line].slice(-20);
    if (this.held) this.held.push(shown);
    else this.o.log?.(shown);
  }

  /** Why the agents did not start: their own one-line reasons, else srun's last lines. */
  private startFailure(): string {
    const agents = [...new Set(this.srunTail.filter((l) => l.startsWith('ckpt agent: ')))];
    const why = agents.length ? agents : this.srunTail.slice(-3);
    return why.length ? `: ${why.join('; ')}` : '';
  }
}
