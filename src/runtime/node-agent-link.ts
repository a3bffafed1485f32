// The coordinator's end of one node agent's connection: requests to it (start a
// rank, restore ranks, probe the store), what it reports of its ranks (output,
// start, exit), and its loss — a closed connection means the node's ranks are
// gone (the agent ends them when it loses us, and it is pid 1 of their pid
// namespace: they cannot outlive it).
import { CkptError, ErrorCodes } from '../errors.js';
import { fanoutReply, rankExit, rankOutput, rankStarted, relayClose, relayData, relayOpen, startReply, type AgentHello, type StartRank } from '../wire/agent-messages.js';
import { RelayedStream, type FanoutItem } from './relayed-stream.js';
import type { Channel } from '../wire/channel.js';
import type { ControlMessage } from '../wire/frame.js';
import { parse } from '../wire/validate.js';
import { parseTag } from '../util/writer-tag.js';
import type { RemoteRank } from './rank-remote.js';

export class NodeAgentLink {
  readonly node: string;
  readonly index: number;
  readonly address: string;
  /** Its writer tag (util/writer-tag.ts), if it sent a well-formed one: names its --stage directories. */
  readonly writer: string | undefined;
  /** Ranks this agent holds (started or restored), by rank. */
  readonly ranks = new Map<number, RemoteRank>();
  private lost: string | undefined;
  /** Rank connections it relays, by its stream number. */
  private readonly streams = new Map<number, RelayedStream>();

  constructor(
    private readonly channel: Channel,
    hello: AgentHello,
    /** A rank reported by this agent that the coordinator does not know yet (a restored one). */
    private readonly adopt: (rank: number, pid: number, agent: NodeAgentLink) => RemoteRank | undefined,
    /** Its connection closed; `live`: the ranks it still held (they count as killed). */
    private readonly onLost: (agent: NodeAgentLink, why: string, live: number[]) => void,
    /** A rank connection it relays, dialed at its relay `to`: admitted as any connection is. */
    private readonly admit: (stream: RelayedStream, to: string) => void,
  ) {
    this.node = hello.node;
    this.index = hello.nodeIndex;
    this.address = hello.address;
    this.writer = hello.writer !== undefined && parseTag(hello.writer) ? hello.writer : undefined;
    channel.on('message', (m) => this.onMessage(m));
    channel.on('close', (err) => this.loseAll(`node ${this.node} lost: its agent's connection closed${err ? ` (${err.message})` : ''}`));
  }

  get isLost(): boolean {
    return this.lost !== undefined;
  }

  async start(rank: RemoteRank, spec: StartRank, timeoutMs: number): Promise<void> {
    this.ranks.set(spec.rank, rank);
    const reply = await this.request('start', { ...spec }, timeoutMs, `node ${this.node} to start rank ${spec.rank}`);
    rank.started(this, parse(startReply, reply, `node ${this.node}'s start reply`).pid);
  }

  /** A request; a refusal (ok:false) becomes a CkptError naming the node. */
  async request(op: string, body: Record<string, unknown>, timeoutMs: number, what: string): Promise<ControlMessage> {
    if (this.lost) throw new CkptError(ErrorCodes.NODE_LOST, this.lost);
    const reply = await this.channel.request({ type: 'request', op, ...body }, timeoutMs, what);
    if (reply.ok === false) throw new CkptError(ErrorCodes.SPAWN_FAILED, `node ${this.node}: ${String(reply.message)}`);
    return reply;
  }

  signal(rank: number, signal: NodeJS.Signals): boolean {
    if (this.lost) return false;
    this.channel.send({ type: 'signal', rank, signal });
    return true;
  }

  terminate(rank: number, graceMs: number): void {
    this.channel.send({ type: 'terminate', rank, graceMs });
  }

  close(): void {
    this.channel.close();
  }

  send(message: Record<string, unknown>): void {
    this.channel.send(message as ControlMessage);
  }

  /** One request to each of `items`' ranks through this agent: each one's reply, in order, or why it has none; fails as a whole if the agent does not answer. */
  async fanout(op: string, items: FanoutItem[], timeoutMs: number): Promise<(ControlMessage | CkptError)[]> {
    const reply = await this.request('fanout', { rankOp: op, items, timeoutMs }, timeoutMs + 5000, `node ${this.node} to answer '${op}' for its ranks`);
    const replies = parse(fanoutReply, reply, `node ${this.node}'s fanout reply`).replies;
    return items.map(({ rank }) => {
      const r = replies.find((x) => x.rank === rank);
      if (!r || r.error !== undefined || typeof r.reply !== 'object' || r.reply === null) {
        const code = Object.values(ErrorCodes).includes(r?.code as never) ? (r!.code as CkptError['code']) : ErrorCodes.OOB_PROTOCOL;
        return new CkptError(code, r?.error ?? `node ${this.node} did not answer for rank ${rank}`);
      }
      const m = r.reply as ControlMessage;
      if (m.ok === false) return new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${rank} refused '${op}': ${String(m.message)}`);
      return m;
    });
  }

  private onMessage(m: ControlMessage): void {
    try {
      if (m.type === 'relay') {
        const r = parse(relayData, m, `node ${this.node}'s relay`);
        this.streams.get(r.conn)?.fromAgent(Buffer.from(r.data, 'base64'));
      } else if (m.type === 'relay-open') {
        const { conn, to } = parse(relayOpen, m, `node ${this.node}'s relay-open`);
        const stream = new RelayedStream(conn, this);
        this.streams.set(conn, stream);
        stream.on('close', () => this.streams.delete(conn));
        this.admit(stream, to);
      } else if (m.type === 'relay-close') {
        this.streams.get(parse(relayClose, m, `node ${this.node}'s relay-close`).conn)?.endedByAgent();
      } else if (m.type === 'output') {
        const o = parse(rankOutput, m, `node ${this.node}'s output`);
        this.ranks.get(o.rank)?.output(o.stream, Buffer.from(o.data, 'base64'));
      } else if (m.type === 'exit') {
        const e = parse(rankExit, m, `node ${this.node}'s exit report`);
        this.ranks.get(e.rank)?.exited_({ code: e.code, signal: e.signal as NodeJS.Signals | null });
      } else if (m.type === 'restored') {
        const s = parse(rankStarted, m, `node ${this.node}'s restore report`);
        const rank = this.adopt(s.rank, s.pid, this);
        if (rank) this.ranks.set(s.rank, rank);
      } else {
        throw new CkptError(ErrorCodes.OOB_PROTOCOL, `unexpected message '${m.type}' from node ${this.node}'s agent`);
      }
    } catch (err) {
      this.channel.fail(err as CkptError);
    }
  }

  /** Every rank of the node counts as killed, with the reason (the job's abort names the node). */
  private loseAll(why: string): void {
    if (this.lost) return;
    this.lost = why;
    for (const s of this.streams.values()) s.endedByAgent();
    const live = [...this.ranks.values()].filter((r) => !r.hasExited).map((r) => r.rank);
    for (const r of this.ranks.values()) r.lost(why);
    this.onLost(this, why, live);
  }
}
