// The coordinator: the job's end of the out-of-band channel. Ranks join it
// (hello → welcome, with every rank's peer address: the wire-up), report their
// end (finalize, with message counters) and may ask for an abort; control clients
// (`ckpt ps`/`ckpt kill`, `ckpt checkpoint`) ask it for status, a checkpoint or a
// kill. It never carries rank-to-rank data. How a connection gets in is
// coordinator-admission.ts; what control clients may ask, coordinator-control.ts.
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { RelayedStream } from './relayed-stream.js';
import { roundToRanks, type RoundHost } from './rank-rounds.js';
import { CkptError, ErrorCodes } from '../errors.js';
import { Channel, HelloGate, helloTimeoutMs, listenOn, OOB_PROTOCOL_VERSION, type Address, formatAddress } from '../wire/channel.js';
import { proveAnswer } from '../wire/hello-proof.js';
import type { ControlMessage } from '../wire/frame.js';
import type { AgentHello } from '../wire/agent-messages.js';
import { admitConnection, type AdmissionHost } from './coordinator-admission.js';
import { serveControl, type CheckpointHandler } from './coordinator-control.js';
import { RankWaits } from './rank-waits.js';
import { ArrivalReports } from './arrival-reports.js';
import { abbreviateRanks } from '../util/rank-list.js';

export interface CoordinatorOptions {
  jobId: string;
  size: number;
  secret: string;
  address: Address;
  /** How long ranks that have joined wait for the rest before the job is aborted. */
  joinTimeoutMs?: number;
  /** How long a new connection has to say hello (default: the shared hello timeout, `CKPT_HELLO_TIMEOUT_MS`). */
  helloTimeoutMs?: number;
  /** Connections held at once before their hello (default MAX_UNAUTHENTICATED); more are closed at once. */
  maxUnauthenticated?: number;
}

/** Per-peer message counters a rank reports at finalize. */
export interface Counters {
  sent: number[];
  received: number[];
}

interface RankSlot {
  channel?: Channel;
  pid?: number;
  peer?: string;
  /** Its hello said it drains by markers (criu checkpoints in one round). */
  markers?: boolean;
  /** Its hello's nonce: the welcome proves the secret over it. */
  nonce?: string;
  counters?: Counters;
  exited: boolean;
}

export interface CoordinatorEvents {
  /** Every rank has joined: the wire-up is complete. */
  ready: [];
  /** The job cannot go on (a rank asked for it, or the wire-up failed). */
  abort: [{ message: string; rank?: number; status?: number }];
  /** A control client asked for the job to be killed or signalled. */
  kill: [{ signal?: NodeJS.Signals }];
  /** A connection was refused (wrong secret, duplicate rank, bad frame…): the job goes on. */
  rejected: [CkptError];
}

export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly jobId: string;
  readonly size: number;
  private readonly secret: string;
  private server: Server | undefined;
  private bound: Address;
  private readonly slots: RankSlot[];
  private readonly channels = new Set<Channel>();
  private joinTimer: NodeJS.Timeout | undefined;
  private wiredUp = false;
  /** A restart's verification the welcome waits for (holdWelcome). */
  private welcomeHeld: Promise<void> | undefined;
  private readonly joinTimeoutMs: number;
  /** How connections are admitted (coordinator-admission.ts), with this coordinator's part in it. */
  private readonly admission: AdmissionHost;
  /** Ranks expected back after a CRIU dump, and who waits for them. */
  private readonly rejoins = new RankWaits<ControlMessage>();
  /** self checkpoints: the safe point each rank reported standing at, unasked (arrival-reports.ts). */
  private readonly arrivals: ArrivalReports;
  /** Filled by the launcher: what `status` requests from control clients return. */
  statusProvider: () => Record<string, unknown> = () => ({});
  /** Filled by the launcher: takes a coordinated checkpoint (`ckpt checkpoint JOB`, comm.checkpoint()). */
  checkpointHandler: CheckpointHandler | undefined;
  /** Control clients' checkpoints in progress, by the token they named (coordinator-control.ts). */
  private readonly checkpointAborts = new Map<string, AbortController>();
  /** Filled by the launcher when the job has node agents: one round with all of them. */
  pingAgents: (() => Promise<void>) | undefined;
  /** Set by a starter with node agents (starter-slurm.ts): takes their connections. */
  private agentHandler: ((channel: Channel, hello: AgentHello) => void) | undefined;

  acceptAgents(handler: (channel: Channel, hello: AgentHello) => void): void {
    this.agentHandler = handler;
  }

  /** A rank connection relayed by a node agent (relayed-stream.ts), dialed at its relay `to`: admitted as a socket is. */
  admitRelayed(stream: Duplex, to: string): void {
    admitConnection(stream as Socket, this.admission, [to]);
  }

  /**
   * One request to each of `ranks` at once. Ranks relayed by a node agent get theirs
   * through it, one message per node each way (the coordinator's work per round grows
   * with nodes); the others directly. The first failure fails the round. A rank for
   * which `arrival` names a report (self's reach) is asked nothing: its unasked
   * `arrived` report of that checkpoint and safe point answers ({ written }), kept
   * by its agent for the round when it has one.
   */
  async requestAll(
    ranks: readonly number[],
    op: string,
    body: (rank: number) => Record<string, unknown>,
    timeoutMs = 10_000,
    arrival: (rank: number) => { seq: number; safePoint: number } | undefined = () => undefined,
  ): Promise<ControlMessage[]> {
    return (await roundToRanks(this.roundHost, { ranks, op, body, timeoutMs, arrival, settled: false })) as ControlMessage[];
  }

  private readonly roundHost: RoundHost = {
    relayOf: (r) => {
      const ch = this.slots[r]?.channel;
      return ch?.socket instanceof RelayedStream && !ch.isClosed ? ch.socket.via : undefined;
    },
    request: (r, op, timeoutMs, body) => this.requestRank(r, op, timeoutMs, body),
    arrival: (r, seq, safePoint, timeoutMs) => this.awaitArrival(r, seq, safePoint, timeoutMs),
  };

  /** As requestAll, but no rank fails the round: each one's reply, or why it has none. */
  requestAllSettled(ranks: readonly number[], op: string, body: (rank: number) => Record<string, unknown>, timeoutMs: number): Promise<(ControlMessage | Error)[]> {
    return roundToRanks(this.roundHost, { ranks, op, body, timeoutMs, arrival: () => undefined, settled: true });
  }

  /** Every rank's hello said it drains by markers (none is restored from an older ckpt's snapshot). */
  get markerDrain(): boolean {
    return this.slots.every((s) => s.markers === true);
  }

  /** The ranks' OOB channels are up (the checkpoint protocol needs every rank). */
  get allConnected(): boolean {
    return this.wiredUp && this.slots.every((s) => s.channel && !s.channel.isClosed && !s.exited);
  }

  constructor(options: CoordinatorOptions) {
    super();
    this.jobId = options.jobId;
    this.size = options.size;
    this.secret = options.secret;
    this.bound = options.address;
    this.joinTimeoutMs = options.joinTimeoutMs ?? 60_000;
    this.slots = Array.from({ length: options.size }, () => ({ exited: false }));
    this.arrivals = new ArrivalReports(options.size);
    const bound = () => this.address;
    this.admission = {
      jobId: this.jobId,
      size: this.size,
      secret: this.secret,
      get address(): string { return bound(); }, // where it listens, once it does
      helloTimeoutMs: options.helloTimeoutMs ?? helloTimeoutMs(),
      gate: new HelloGate(options.maxUnauthenticated),
      channels: this.channels,
      checkRank: (rank, rejoin) => this.checkRank(rank, rejoin),
      admitRank: (rank, rejoin, channel, hello) => (rejoin ? this.rejoin(rank, channel, hello) : this.join(rank, channel, hello)),
      rankMessage: (rank, channel, m) => this.onRankMessage(rank, channel, m),
      rankClosed: (rank, channel) => this.onRankClosed(rank, channel),
      controlMessage: (channel, m) =>
        serveControl(channel, m, {
          status: () => this.statusProvider(),
          peers: () => (this.wiredUp ? this.peerAddresses() : []),
          checkpointHandler: this.checkpointHandler,
          kill: (signal) => this.emit('kill', { signal }),
          pingAgents: () => this.pingAgents?.(),
          pingRanks: () => this.requestAll([...this.slots.keys()], 'ping', () => ({}), 30_000).then(() => {}),
          checkpointAborts: this.checkpointAborts,
        }),
      refused: (err) => this.emit('rejected', err),
      admitAgent: (channel, hello) => {
        if (!this.agentHandler) throw new CkptError(ErrorCodes.OOB_AUTH, 'this job has no node agents');
        this.agentHandler(channel, hello);
      },
    };
  }

  get address(): string {
    return formatAddress(this.bound);
  }

  get ready(): boolean {
    return this.wiredUp;
  }

  async listen(): Promise<void> {
    const { server, address } = await listenOn(this.bound, (socket) => admitConnection(socket, this.admission));
    this.server = server;
    this.bound = address;
  }

  /** Every rank's current peer address (after the wire-up). */
  peerAddresses(): string[] {
    return this.slots.map((s) => s.peer ?? '');
  }

  /** A rank about to close its connection for a CRIU dump: its hello when back (`rejoin: true`); fails after `timeoutMs` or at its exit. */
  awaitRejoin(rank: number, timeoutMs: number): Promise<ControlMessage> {
    return this.rejoins.wait(rank, undefined, timeoutMs, `rank ${rank} to rejoin after its dump`);
  }

  /**
   * self: resolves with what `rank` had written to each peer once it reports
   * standing at safe point `safePoint` of checkpoint `seq` (perhaps already done);
   * fails after `timeoutMs`, or when the rank exits or loses its connection.
   */
  awaitArrival(rank: number, seq: number, safePoint: number, timeoutMs: number): Promise<number[]> {
    return this.arrivals.wait(rank, seq, safePoint, timeoutMs);
  }

  /** The checkpoint is over: arrivals reported for it are forgotten. */
  clearArrivals(): void {
    this.arrivals.clear();
  }

  /** The launcher tells the coordinator a rank's process ended. */
  /** A rank is gone, in a job being aborted too: nothing waits for it any longer (its rejoin, its arrival). */
  rankGone(rank: number): void {
    this.rejoins.reject(rank, new CkptError(ErrorCodes.JOB_ABORTED, `rank ${rank} exited while it was being checkpointed`));
    this.arrivals.reject(rank, new CkptError(ErrorCodes.JOB_ABORTED, `rank ${rank} exited while it was being checkpointed`));
  }

  rankExited(rank: number, exit: { code: number | null; signal: string | null }): void {
    const slot = this.slots[rank];
    if (!slot || slot.exited) return;
    slot.exited = true;
    this.rankGone(rank);
    if (!this.wiredUp && !slot.channel && this.slots.some((s) => s.channel)) {
      // Ranks are waiting in init() for one that will never come.
      this.emit('abort', { message: `rank ${rank} exited before joining the job`, rank });
    }
    if (!this.wiredUp) return;
    // Receivers learn how many messages the rank sent them, so a recv() from it
    // can fail as soon as everything it sent has been delivered (instead of hanging).
    for (let r = 0; r < this.size; r++) {
      const ch = this.slots[r]?.channel;
      if (r === rank || !ch) continue;
      ch.send({ type: 'exited', rank, code: exit.code, signal: exit.signal, sent: slot.counters?.sent[r] ?? null });
    }
  }

  /** Tells every connected rank that the job is being aborted (best effort; ranks are killed anyway). */
  broadcastAbort(message: string): void {
    this.clearJoinTimer();
    // Nobody comes back from a dump into an aborted job.
    this.rejoins.rejectAll((rank) => new CkptError(ErrorCodes.JOB_ABORTED, `the job was aborted while rank ${rank} was being checkpointed: ${message}`));
    for (const slot of this.slots) slot.channel?.send({ type: 'abort', message, proof: proveAnswer(this.secret, 'abort', slot.nonce ?? '') });
  }

  /** Asks one rank something over the OOB channel (stats now; checkpoint phases in issue 4). */
  async requestRank(rank: number, op: string, timeoutMs = 10_000, body: Record<string, unknown> = {}): Promise<ControlMessage> {
    const ch = this.slots[rank]?.channel;
    if (!ch || ch.isClosed) throw new CkptError(ErrorCodes.OOB_UNREACHABLE, `rank ${rank} is not connected to the coordinator`);
    const reply = await ch.request({ type: 'request', op, ...body }, timeoutMs, `rank ${rank} to answer '${op}'`);
    if (reply.ok === false) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${rank} refused '${op}': ${String(reply.message)}`);
    return reply;
  }

  /** Counters reported at finalize, per rank (undefined for ranks that did not finalize). */
  finalCounters(): (Counters | undefined)[] {
    return this.slots.map((s) => s.counters);
  }

  async close(): Promise<void> {
    this.clearJoinTimer();
    // Nothing waits for a rank of a closed job (a rejoin that will not come must not hold the process).
    const closed = () => new CkptError(ErrorCodes.JOB_ABORTED, 'the job has ended');
    this.rejoins.rejectAll(closed);
    this.arrivals.rejectAll(closed);
    for (const ch of this.channels) ch.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private clearJoinTimer(): void {
    if (this.joinTimer) clearTimeout(this.joinTimer);
    this.joinTimer = undefined;
  }

  /** Admission's question: may `rank` join (or rejoin) now? */
  private checkRank(rank: number, rejoin: boolean): void {
    if (rejoin) {
      if (!this.rejoins.has(rank)) throw new CkptError(ErrorCodes.OOB_AUTH, `rank ${rank} rejoined, but no checkpoint expects it to`);
      return;
    }
    const slot = this.slots[rank]!;
    if (slot.channel || slot.peer !== undefined) throw new CkptError(ErrorCodes.OOB_AUTH, `duplicate rank ${rank}: it has already joined the job`);
  }

  private onRankClosed(rank: number, channel: Channel): void {
    const slot = this.slots[rank];
    if (slot?.channel !== channel) return;
    slot.channel = undefined;
    this.arrivals.reject(rank, new CkptError(ErrorCodes.OOB_UNREACHABLE, `rank ${rank} lost its connection to the coordinator`));
  }

  /** What a rank's hello says of it (its pid, where its peers reach it, how it drains), on `channel`. */
  private heard(slot: RankSlot, channel: Channel, hello: ControlMessage): void {
    Object.assign(slot, { channel, peer: hello.peer as string, markers: hello.markers === true, nonce: hello.nonce as string }, typeof hello.pid === 'number' ? { pid: hello.pid } : {});
  }

  /** A rank back from its CRIU dump: it listens for peers at a new address. */
  private rejoin(rank: number, channel: Channel, hello: ControlMessage): void {
    const slot = this.slots[rank]!;
    // The old connection's close may not have reached us yet.
    if (slot.channel && slot.channel !== channel) slot.channel.destroy();
    this.heard(slot, channel, hello);
    this.rejoins.resolve(rank, hello);
  }

  private join(rank: number, channel: Channel, hello: ControlMessage): void {
    const slot = this.slots[rank]!;
    slot.pid = undefined;
    this.heard(slot, channel, hello);
    if (!this.joinTimer && !this.wiredUp) {
      this.joinTimer = setTimeout(() => {
        const missing = this.slots.flatMap((s, r) => (s.peer === undefined ? [r] : []));
        this.emit('abort', {
          message: `timed out after ${this.joinTimeoutMs} ms waiting for rank${missing.length > 1 ? 's' : ''} ${abbreviateRanks(missing)} to join the job (call init())`,
        });
      }, this.joinTimeoutMs);
    }
    if (this.slots.every((s) => s.peer !== undefined)) {
      this.clearJoinTimer();
      this.wiredUp = true;
      // Held (a restart's verification): sent once it passed; never if it failed (the restart ends the job).
      if (this.welcomeHeld) this.welcomeHeld.then(() => this.welcome(), () => {});
      else this.welcome();
    }
  }

  /** Every rank gets every rank's peer address: the job is wired up. */
  private welcome(): void {
    const peers = this.slots.map((s) => s.peer!);
    for (const s of this.slots) s.channel?.send({ type: 'welcome', v: OOB_PROTOCOL_VERSION, job: this.jobId, size: this.size, peers, proof: proveAnswer(this.secret, 'welcome', s.nonce ?? '') });
    this.emit('ready');
  }

  /** @internal The welcome (and so the ranks' first step past init()) waits for `until` too. */
  holdWelcome(until: Promise<void>): void {
    this.welcomeHeld = until;
  }

  private onRankMessage(rank: number, channel: Channel, m: ControlMessage): void {
    switch (m.type) {
      case 'finalize': {
        const counters = parseCounters(m, this.size);
        if (!counters) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${rank} sent finalize without valid counters`);
        this.slots[rank]!.counters = counters;
        channel.send({ type: 'reply', id: m.id, ok: true });
        return;
      }
      case 'request': {
        // A rank asks for a checkpoint (comm.checkpoint()): accepted now, taken at the ranks' safe points.
        if (m.op !== 'checkpoint' || !this.checkpointHandler) {
          channel.send({ type: 'reply', id: m.id, ok: false, message: `unknown operation '${String(m.op)}'` });
          return;
        }
        channel.send({ type: 'reply', id: m.id, ok: true });
        this.checkpointHandler({ from: 'rank' }).catch(() => {});
        return;
      }
      case 'arrived':
        // self: this rank stands at its first safe point since the checkpoint was announced.
        return this.arrivals.reported(rank, m);
      case 'rejoined':
        // criu: back from its dump on the connection it kept (its report, its new peer address).
        if (typeof m.peer !== 'string') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${rank} rejoined without a peer address`);
        return this.rejoin(rank, channel, m);
      case 'dumped': {
        // criu, a checkpoint that ends the job: the rank stays frozen after its dump;
        // the shell that ran CRIU says so on the connection the rank handed it.
        this.rejoins.resolve(rank, { type: 'hello', dumped: 'ok', stopped: true });
        return;
      }
      case 'abort': {
        const status = typeof m.status === 'number' && Number.isInteger(m.status) ? m.status : 1;
        this.emit('abort', { message: `rank ${rank} aborted the job: ${String(m.message ?? 'no reason given')}`, rank, status });
        return;
      }
      default:
        throw new CkptError(ErrorCodes.OOB_PROTOCOL, `unexpected message '${m.type}' from rank ${rank}`);
    }
  }
}

function parseCounters(m: ControlMessage, size: number): Counters | undefined {
  const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length === size && a.every((n) => Number.isSafeInteger(n) && n >= 0);
  return ok(m.sent) && ok(m.received) ? { sent: m.sent, received: m.received } : undefined;
}
