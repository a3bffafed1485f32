// The node's ranks reach their coordinator through their agent: the agent listens
// on a private unix socket on the node, and relays each rank connection to the coordinator as a
// stream of whole frames over its own connection (the coordinator admits it as it
// would a socket). The coordinator's work per round then grows with nodes: a
// `fanout` asks the agent to put one request to each of its ranks and answer with
// all their replies at once; the ranks' unasked `arrived` reports (self) stay here
// until a fan-out asks for them (rank-arrivals.ts). docs/RUNTIME.md, "Across nodes".
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ErrorCodes } from '../errors.js';
import type { Channel } from '../wire/channel.js';
import { decodeControl, encodeControl, encodeFrame, FrameDecoder, FrameKind, MAX_CONTROL_BYTES, type ControlMessage } from '../wire/frame.js';
import type { FanoutRequest } from '../wire/agent-messages.js';
import { RankArrivals } from './rank-arrivals.js';
import { makeRelayDir, relayBase, sweepRelayDirs } from './relay-dir.js';
import { removeOwnDir } from '../util/remove-tree.js';

/** Request ids the agent uses on a rank's stream; the coordinator's own count up from 1. */
const FANOUT_IDS = 2 ** 30;

interface Pending {
  /** The reply, or undefined: none will come (timed out, or the rank's connection closed). */
  resolve: (m: ControlMessage | undefined) => void;
  timer: NodeJS.Timeout;
  conn: number;
}

interface Conn {
  socket: Socket;
  rank?: number;
}

export class RankRelay {
  private server: Server | undefined;
  /** Its address (unix:…), which its ranks' hellos name. */
  private address = '';
  /** The private directory of its socket (removed at close). */
  private dir: string | undefined;
  private readonly conns = new Map<number, Conn>();
  /** The newest connection of each rank (a criu rank reconnects after its dump). */
  private readonly byRank = new Map<number, number>();
  private readonly pending = new Map<number, Pending>();
  private nextConn = 1;
  private nextId = FANOUT_IDS;
  private readonly arrivals = new RankArrivals();

  constructor(private readonly channel: Channel) {}

  /**
   * Listens on a unix socket in a private directory of its own (0700): only this user's
   * processes on this node reach it — a loopback TCP port would let any local user
   * claim a rank's connection before the coordinator has checked it. Resolves with the
   * address its ranks get as CKPT_COORD.
   */
  async listen(): Promise<string> {
    // What agents of this user killed here before left there goes first (relay-dir.ts).
    const base = relayBase();
    await sweepRelayDirs(base);
    this.dir = await makeRelayDir(base);
    const path = join(this.dir, 'relay.sock');
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path, backlog: 1024 }, () => resolve());
    });
    this.server = server;
    this.address = `unix:${path}`;
    return this.address;
  }

  /** A frame from the coordinator for stream `conn` (whole: the coordinator writes one frame at a time). */
  toRank(conn: number, data: Buffer): void {
    this.conns.get(conn)?.socket.write(data);
  }

  closeRank(conn: number): void {
    this.conns.get(conn)?.socket.end();
  }

  /**
   * One request to each rank named; every rank's reply, or why it has none. An item
   * with `arrival` is answered by the rank's own `arrived` report of that checkpoint
   * and safe point ({ written }), once it is in: the rank is not asked anything.
   */
  async fanout(f: FanoutRequest): Promise<{ rank: number; reply?: unknown; error?: string; code?: string }[]> {
    return Promise.all(
      f.items.map(async ({ rank, body, arrival }) => {
        const c = this.conns.get(this.byRank.get(rank) ?? -1);
        if (!c) return { rank, error: `rank ${rank} is not connected to the coordinator`, code: ErrorCodes.OOB_UNREACHABLE };
        if (arrival) return { rank, ...(await this.arrivals.wait(rank, arrival.seq, arrival.safePoint, f.timeoutMs)) };
        const id = this.nextId++;
        const conn = this.byRank.get(rank)!;
        let timedOut = false;
        const reply = await new Promise<ControlMessage | undefined>((resolve) => {
          const timer = setTimeout(() => ((timedOut = true), resolve(undefined)), f.timeoutMs);
          this.pending.set(id, { resolve, timer, conn });
          c.socket.write(encodeControl({ ...(body as Record<string, unknown>), type: 'request', op: f.rankOp, id }));
        });
        this.pending.delete(id);
        if (!reply && timedOut) return { rank, error: `timed out after ${f.timeoutMs} ms waiting for rank ${rank} to answer '${f.rankOp}'`, code: ErrorCodes.TIMEOUT };
        if (!reply) return { rank, error: `rank ${rank}'s connection closed before its reply to '${f.rankOp}'`, code: ErrorCodes.OOB_UNREACHABLE };
        const { id: _id, ...rest } = reply;
        return { rank, reply: rest };
      }),
    );
  }

  close(): void {
    this.arrivals.close();
    this.server?.close();
    for (const c of this.conns.values()) c.socket.destroy();
    if (this.dir) removeOwnDir(this.dir);
  }

  private accept(socket: Socket): void {
    const conn = this.nextConn++;
    const c: Conn = { socket };
    this.conns.set(conn, c);
    this.channel.send({ type: 'relay-open', conn, to: this.address });
    const decoder = new FrameDecoder((frame) => {
      if (frame.kind === FrameKind.CONTROL) {
        const m = decodeControl(frame.payload);
        // Its hello says which rank it is: fan-outs to that rank go here from now on.
        if (c.rank === undefined && m.type === 'hello' && Number.isSafeInteger(m.rank)) {
          c.rank = m.rank as number;
          this.byRank.set(c.rank, conn);
        }
        if (m.type === 'reply' && typeof m.id === 'number' && m.id >= FANOUT_IDS) {
          const p = this.pending.get(m.id);
          if (p) {
            clearTimeout(p.timer);
            p.resolve(m);
          }
          return;
        }
        // self: kept for the reach round's fan-out, not relayed (one message per node, not per rank).
        if (m.type === 'arrived' && c.rank !== undefined && this.byRank.get(c.rank) === conn) return this.arrivals.reported(c.rank, m);
      }
      this.channel.send({ type: 'relay', conn, data: encodeFrame(frame.kind, frame.tag, frame.payload).toString('base64') });
    }, { control: MAX_CONTROL_BYTES, data: 0 });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.conns.delete(conn);
      // Requests to it get no reply now: their round fails at once, as on a direct connection.
      for (const [id, p] of this.pending) {
        if (p.conn !== conn) continue;
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.resolve(undefined);
      }
      if (c.rank !== undefined && this.byRank.get(c.rank) === conn) {
        this.byRank.delete(c.rank);
        this.arrivals.lost(c.rank);
      }
      this.channel.send({ type: 'relay-close', conn });
    });
  }
}
