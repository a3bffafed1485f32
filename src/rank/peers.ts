// Direct rank-to-rank connections. Each rank listens on its own socket (unix in the
// job's private directory, or TCP). A pair of ranks gets one connection, both ways,
// when either first has something for the other (peers/dial.ts): the links, and a
// checkpoint's drain of them, grow with the ranks a rank talks to, not with the
// job's size. One bidirectional connection, not one per
// direction: over TCP a reply then carries the ACK of the message it answers, instead
// of each message costing a bare ACK packet on a second connection (one-way latency
// of a small ping-pong about 30% lower). Each direction is still exactly one byte
// stream, so per-peer order is the stream's byte order, and a half-close (end())
// says "nothing more from me".
// Both sides read with `onread` (the kernel writes a large message straight into its
// final buffer); Node offers no `onread` to accepted sockets, so the lower rank reads
// through a duplicate of the accepted fd wrapped in a socket of its own.
// The parts live in peers/: the links' bookkeeping (links.ts), admitting accepted
// connections (accept.ts), connecting out (dial.ts), writing and holding frames
// (outbox.ts), reading them (inbound.ts), the dup trick (sockets.ts). This class
// puts them together and keeps the network's life cycle.
import type { Server } from 'node:net';
import { CkptError, ErrorCodes } from '../errors.js';
import { encodeControl, type FrameKind } from '../wire/frame.js';
import { formatAddress, parseAddress, type Address } from '../wire/channel.js';
import { buildConnector, type Connector } from '../wire/connector.js';
import { PeerAdmission } from './peers/accept.js';
import { dialPeer } from './peers/dial.js';
import { Inbound } from './peers/inbound.js';
import { LinkTable } from './peers/links.js';
import type { PeerNetworkOptions } from './peers/options.js';
import { Outbox } from './peers/outbox.js';

export type { PeerNetworkOptions } from './peers/options.js';

export class PeerNetwork {
  private server: Server | undefined;
  /** How this rank listens and connects (set by listen(); by the address's transport until then). */
  private connector: Connector | undefined;
  private readonly table: LinkTable;
  private readonly outbox: Outbox;
  private readonly inbound: Inbound;
  private readonly admission: PeerAdmission;
  /** Ranks whose stream to us has ended. */
  readonly ended: boolean[];
  /**
   * Frames handed to each peer's socket, and frames read from each peer: the
   * drain step of a checkpoint waits until read[i] on j equals written[j] on i.
   */
  readonly written: number[];
  readonly read: number[];
  /** Called after every frame read (the drain step watches the counts). */
  onRead: (() => void) | undefined;
  /** Where each peer listens (the welcome's, then each resume's), once known. */
  private addresses: (Address | undefined)[];
  /** The drain marker of the checkpoint under way: a link made during its drain gets it too. */
  private marker: Buffer | undefined;

  constructor(private readonly o: PeerNetworkOptions) {
    // A peer's end is news to a drain too (its marker can no longer come).
    this.table = new LinkTable(
      { ...o, onPeerEnd: (peer) => (o.onPeerEnd(peer), this.onRead?.()) },
      (peer) => this.attached(peer),
      () => this.onRead?.(),
    );
    this.outbox = new Outbox(o, this.table, (dest) => this.connect(dest));
    this.inbound = new Inbound(o, () => this.onRead?.());
    this.admission = new PeerAdmission(o, this.table, this.inbound);
    this.ended = this.table.ended;
    this.written = this.outbox.written;
    this.read = this.inbound.read;
    this.addresses = new Array(o.size).fill(undefined);
  }

  /** Holds every later send in memory (a checkpoint is draining the links). */
  pause(): void {
    this.outbox.pause();
  }

  /** Sends what was held back, in order, and lets sends through again. */
  resume(): void {
    this.marker = undefined;
    this.admission.sealed = false;
    this.outbox.resume();
    // Frames queued for a link that a peer on its way down turned away.
    this.connectQueued();
  }

  /**
   * Writes a drain marker of checkpoint attempt `id` on every link, behind every frame
   * already handed to it (sends are held): a peer that has read it has read all
   * this rank sent it. `abort`: this rank takes no part (nobody waits for it).
   */
  sendMarkers(id: number, abort = false): void {
    const marker = encodeControl({ type: 'marker', id, ...(abort ? { abort: true } : {}) });
    this.marker = marker;
    this.table.links.forEach((link, r) => {
      if (r !== this.o.rank && link.socket && !link.closed && !link.socket.destroyed) link.socket.write(marker);
    });
  }

  /** The link with `peer`: up (or ended since), our connection on its way, or none (nothing can come from it). */
  linkState(peer: number): 'up' | 'dialing' | 'none' {
    const link = this.table.links[peer]!;
    return link.socket ? 'up' : link.dialing ? 'dialing' : 'none';
  }

  /**
   * Past the drain, on the way down for a dump: a peer's new connection could carry
   * frames this rank would never read, so none is taken up (the peer keeps them).
   */
  seal(): void {
    this.admission.sealed = true;
  }

  /** The newest drain marker read from each peer. */
  get markers(): readonly ({ id: number; abort: boolean } | undefined)[] {
    return this.inbound.markers;
  }

  /** Frames not yet handed to a socket (held or waiting for a link): saved with a self checkpoint. */
  unsent(): { dest: number; frame: Buffer }[] {
    return this.outbox.unsent();
  }

  /** Queues an already encoded frame (a restarted rank re-sends what it had not sent). */
  writeFrame(dest: number, frame: Buffer): void {
    this.outbox.writeFrame(dest, frame);
  }

  get size(): number {
    return this.o.size;
  }

  /** A restarted job has a new id and secret: later hellos carry them. */
  setIdentity(jobId: string, secret: string): void {
    this.o.jobId = jobId;
    this.o.secret = secret;
  }

  /**
   * Closes every peer connection and the listening socket, quietly: no peer is
   * reported gone, no link failed (a CRIU checkpoint takes the rank down to no
   * connections; listen() and connectAll() build the network again). Sends are
   * expected to be held (pause()) and every link drained. The sockets' fds are
   * closed when it resolves.
   */
  async disconnect(timeoutMs = 5000): Promise<void> {
    // What was handed to a socket leaves our buffers first (the drain step saw it read).
    await this.table.drainAll(timeoutMs);
    // A peer that went down first may have ended or reset our connection: that was planned.
    this.table.resetAll();
    // Strangers waiting for their hello went with them (quietly: no close is reported).
    this.admission.reset();
    this.marker = undefined;
    const server = this.server;
    this.server = undefined;
    server?.close();
    // destroy() closes a socket's fd at once (uv_close on a stream); one turn lets the handles finish.
    await new Promise((r) => setImmediate(r));
  }

  /** No connection of ours is on its way (each was answered, or failed). */
  get linked(): boolean {
    return this.table.linked;
  }

  /**
   * Waits until no connection of ours is on its way: a CRIU checkpoint must not
   * hold sends while one is (its frames would go out past the drain).
   */
  async whenLinked(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CkptError(ErrorCodes.TIMEOUT, `rank ${this.o.rank}: its connections to other ranks were not answered after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.table.whenLinked(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Starts listening; returns the address other ranks will connect to. The
   * connector (default: the plain one for the address's transport) says what that
   * is: a wildcard bind is handed out as a concrete address of this host.
   */
  async listen(address: Address, connector: Connector = buildConnector(address.transport)): Promise<string> {
    this.connector = connector;
    this.admission.sealed = false;
    // Accepted sockets start paused: accept() re-wraps them to read with `onread`.
    const { server, advertised } = await connector.listen(address, (s) => this.admission.accept(s), { pauseOnConnect: true });
    this.server = server;
    // Nothing here should keep a finished rank program alive; the communicator
    // holds the process open only while an operation is pending.
    server.unref();
    this.admission.address = formatAddress(advertised);
    return this.admission.address;
  }

  /**
   * After a criu checkpoint that ended with some ranks dumped and others not (it
   * failed part-way): the links to the ranks that went down are closed, and those
   * ranks listen at new addresses. Each such link is forgotten, and made again when
   * either side has something for the other.
   */
  relink(peers: string[]): void {
    this.table.links.forEach((link, r) => {
      if (r !== this.o.rank && (link.closed || link.error)) this.table.reset(r);
    });
    this.knowPeers(peers);
  }

  /**
   * Where every peer listens (the welcome's addresses, or a resume's): links are
   * made when first wanted. Frames already waiting for a link go now.
   */
  knowPeers(peers: string[]): void {
    this.addresses = peers.map((p, r) => (r === this.o.rank ? undefined : parseAddress(p)));
    this.connectQueued();
  }

  /**
   * Queues one message to `dest`. Returns undefined when the caller may reuse its
   * buffer at once (small payloads are copied), else a promise for when the bytes
   * are with the kernel or the socket has room again.
   */
  send(dest: number, kind: FrameKind, tag: number, payload: Uint8Array): Promise<void> | undefined {
    return this.outbox.send(dest, kind, tag, payload);
  }

  /**
   * Flushes and half-closes every link: each peer reads our last message, then
   * end-of-file ("nothing more from this rank"), and ends its side in turn (its
   * later sends to us fail). Resolves when every link has closed both ways.
   */
  closeOutgoing(timeoutMs: number): Promise<void> {
    return this.table.closeOutgoing(timeoutMs);
  }

  close(): void {
    this.table.destroyAll();
    this.server?.close();
    this.server = undefined;
  }

  /**
   * The coordinator says `peer` exited. With no link up, nothing ever told us: later
   * sends fail at once, as on a link the peer closed, and what waits for a link fails.
   */
  exited(peer: number): void {
    const link = this.table.links[peer]!;
    if (link.socket || peer === this.o.rank) return;
    this.table.dropDial(peer);
    link.closed = true;
    this.table.fail(link, new CkptError(ErrorCodes.JOB_ABORTED, `rank ${peer} has exited`, { details: { rank: peer } }), false);
  }

  /** Connects to `peer` unless a link is up or on its way (or its address is not known yet: knowPeers connects then). */
  private connect(peer: number): void {
    const link = this.table.links[peer]!;
    const address = this.addresses[peer];
    if (link.socket || link.dialing || link.error || link.closed || !address) return;
    const connector = this.connector?.transport === address.transport ? this.connector : buildConnector(address.transport);
    dialPeer({ o: this.o, table: this.table, inbound: this.inbound }, connector, peer, address);
  }

  /** Connects wherever frames wait for a link. */
  private connectQueued(): void {
    this.table.links.forEach((link, r) => link.queue.length > 0 && this.connect(r));
  }

  /** A link got its socket: what waited for it goes out (or on hold), and a drain under way puts its marker behind. */
  private attached(peer: number): void {
    this.outbox.flushQueued(peer);
    const link = this.table.links[peer]!;
    if (this.marker && link.socket && !link.closed) link.socket.write(this.marker);
  }
}
