// The ranks of one node, as its agent holds them: started (or restored by CRIU) as
// the agent's children, their output and exit reported to the coordinator in
// order (all output first), signalled and ended on its word.
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { LocalStarter } from '../runtime/starter-local.js';
import type { RankProcess } from '../runtime/starter.js';
import type { Channel } from '../wire/channel.js';
import type { StartRank } from '../wire/agent-messages.js';
import { nextPid } from './pid-bands.js';

export class NodeRanks {
  private readonly held = new Map<number, RankProcess>();
  private readonly starter = new LocalStarter();

  constructor(
    private readonly channel: Channel,
    /** Added to every rank's environment (the node's own facts). */
    private readonly nodeEnv: Record<string, string>,
  ) {}

  /** Every rank's pid (their statuses are waited for: never reaped by anyone else). */
  get pids(): ReadonlySet<number> {
    return new Set([...this.held.values()].flatMap((p) => (p.pid === undefined ? [] : [p.pid])));
  }

  get live(): number {
    return [...this.held.values()].filter((p) => !p.hasExited).length;
  }

  start(m: StartRank): number {
    nextPid(m.rank, Number(m.env.CKPT_SIZE ?? 1));
    const proc = this.starter.start({ rank: m.rank, command: m.command, args: m.args, env: { ...m.env, ...this.nodeEnv }, cwd: m.cwd, stdout: 'pipe', stderr: 'pipe' });
    this.hold(m.rank, proc);
    if (proc.pid === undefined) throw new Error(`cannot start rank ${m.rank}: ${m.command}`);
    return proc.pid;
  }

  /** A rank restored by CRIU as our child. */
  restored(rank: number, proc: RankProcess): void {
    this.channel.send({ type: 'restored', rank, pid: proc.pid });
    this.hold(rank, proc);
  }

  signal(rank: number | undefined, signal: NodeJS.Signals): void {
    for (const [r, p] of this.held) if ((rank === undefined || r === rank) && !p.hasExited) p.signal(signal);
  }

  terminate(rank: number | undefined, graceMs: number): void {
    for (const [r, p] of this.held) if ((rank === undefined || r === rank) && !p.hasExited) void p.terminate(graceMs).catch(() => {});
  }

  /** Resolves when every rank has exited. */
  async exited(): Promise<void> {
    await Promise.allSettled([...this.held.values()].map((p) => p.exited));
  }

  private hold(rank: number, proc: RankProcess): void {
    this.held.set(rank, proc);
    const streams = [this.forward(rank, 'stdout', proc.stdout), this.forward(rank, 'stderr', proc.stderr)];
    proc.exited.then(
      async (exit) => {
        // What it left in its process group goes with it; its output is all sent before its exit.
        proc.signal('SIGKILL');
        await Promise.race([Promise.allSettled(streams), new Promise((r) => setTimeout(r, 2000).unref())]);
        this.channel.send({ type: 'exit', rank, code: exit.code, signal: exit.signal });
      },
      (err: Error) => {
        this.channel.send({ type: 'output', rank, stream: 'stderr', data: Buffer.from(`ckpt agent: ${err.message}\n`).toString('base64') });
        this.channel.send({ type: 'exit', rank, code: 127, signal: null });
      },
    );
  }

  private async forward(rank: number, stream: 'stdout' | 'stderr', s: Readable | null): Promise<void> {
    if (!s) return;
    s.on('data', (d: Buffer) => this.channel.send({ type: 'output', rank, stream, data: d.toString('base64') }));
    await finished(s).catch(() => {});
  }
}
