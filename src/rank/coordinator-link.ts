// A rank's connection to its coordinator: what it answers there, and — for a criu
// checkpoint — leaving the job for the dump and rejoining after it: the same
// coordinator in the original, a restarted job's in a restored copy.
import { fstatSync } from 'node:fs';
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import type { DownOutcome, DumpRun } from '../crs/job.js';
import { currentPid } from '../store/record.js';
import { native } from '../util/native.js';
import { Channel, connectTo, formatAddress, OOB_PROTOCOL_VERSION, parseAddress, remoteError, type Address } from '../wire/channel.js';
import { proveHello, requireAnswer, requireAnswerOrRefusal } from '../wire/hello-proof.js';
import type { ControlMessage } from '../wire/frame.js';
import { exited, welcome as welcomeMessage } from '../wire/messages.js';
import { parse } from '../wire/validate.js';
import type { Comm } from './comm.js';
import type { PeerNetwork } from './peers.js';

/** How this rank reaches its coordinator again (after a CRIU checkpoint or restore). */
export interface CoordinatorLink {
  coord: Address;
  secret: string;
  env: NodeJS.ProcessEnv;
  connectTimeoutMs: number;
  joinTimeoutMs: number;
  onAbort: 'exit' | 'error';
  onCoordinatorLost: 'exit' | 'error';
  /** Listens for this rank's peers (on its own host: wire/connector.ts); returns the address to hand out. */
  listenForPeers: (peers: PeerNetwork, coord: Address, rank: number) => Promise<string>;
}

export function onCoordinatorMessage(comm: Comm, oob: Channel, m: ControlMessage, onAbort: 'exit' | 'error'): void {
  switch (m.type) {
    case 'exited': {
      let e;
      try {
        e = parse(exited, m, 'exited');
      } catch (err) {
        comm.fail(err as CkptError);
        return;
      }
      comm.peerGone(e.rank, e.sent ?? null);
      return;
    }
    case 'abort':
      if (onAbort === 'exit') process.exit(1);
      comm.fail(new JobError(ErrorCodes.JOB_ABORTED, `job aborted: ${String(m.message)}`));
      return;
    case 'request':
      if (typeof m.op === 'string' && m.op.startsWith('ckpt-')) {
        const replyEarly = (body: Record<string, unknown>) => oob.sendFlushed({ type: 'reply', id: m.id, ok: true, ...body });
        comm.agent.handle(m, replyEarly).then(
          (body) => {
            if (body) oob.send({ type: 'reply', id: m.id, ok: true, ...body });
          },
          (err: Error) => oob.send({ type: 'reply', id: m.id, ok: false, message: err.message, code: (err as CkptError).code }),
        );
      } else if (m.op === 'stats') oob.send({ type: 'reply', id: m.id, ok: true, ...comm.stats() });
      // A bare round (the coordinator's ping-ranks): answered at once.
      else if (m.op === 'ping') oob.send({ type: 'reply', id: m.id, ok: true });
      else oob.send({ type: 'reply', id: m.id, ok: false, message: `unknown operation '${String(m.op)}'` });
      return;
    case 'error':
      comm.fail(remoteError(m, 'the coordinator reported an error'));
      return;
    default:
      comm.fail(new CkptError(ErrorCodes.OOB_PROTOCOL, `unexpected message '${m.type}' from the coordinator`));
  }
}

/** What goDown needs of the communicator it takes down and brings back. */
export interface DownHost {
  readonly rank: number;
  readonly size: number;
  jobId: string;
  readonly link: CoordinatorLink;
  readonly peers: PeerNetwork;
  /** The connection to the coordinator, closed on purpose (`leaving`), or a new one attached. */
  leaveCoordinator(): Channel | undefined;
  attachCoordinator(oob: Channel): void;
  /** The connection left open across the dump is the rank's again. */
  keepCoordinator(): void;
  restored(): Promise<void>;
}

/**
 * criu: replies, closes every connection, lets `dump` run, then rejoins. A rank
 * that cannot rejoin its job must not outlive it: it exits (70). `handOff`: `dump`
 * gets a duplicate of the coordinator connection's descriptor (see RankHost.goDown).
 */
export async function goDown(c: DownHost, reply: () => Promise<void>, dump: DumpRun, handOff = false): Promise<void> {
  // Going down: the reply, then no connection leads outside this process but a unix
  // one to the coordinator (or the node's agent), which CRIU takes as external
  // (keptConnection): the report goes on it after the dump, no new connection.
  const oob = c.leaveCoordinator();
  const keep = keptConnection(oob) !== undefined;
  await reply();
  const fd = handOff ? socketFd(oob) : undefined;
  const kept = fd === undefined ? undefined : native().dup(fd);
  // Closing our descriptor does not end the connection while the duplicate is open.
  if (!keep) oob?.destroy();
  await c.peers.disconnect();
  // The original listens for its peers again while its images are made durable.
  let listening: Promise<string> | undefined;
  const back = () => {
    listening ??= c.link.listenForPeers(c.peers, c.link.coord, c.rank);
    listening.catch(() => {});
  };
  const outcome = await dump(kept, back);
  if (outcome.restored) listening = undefined;
  if (keep && !outcome.restored) {
    try {
      await reportOnKept(c, oob!, outcome, listening);
    } catch (err) {
      process.stderr.write(`ckpt/rank: rank ${c.rank} cannot report its dump: ${(err as Error).message}; exiting\n`);
      process.exit(70);
    }
    return;
  }
  // A restored copy: the kept connection's stand-in goes (its job is another one now).
  if (keep) oob?.destroy();
  try {
    if (outcome.rejoin) {
      const info = outcome.rejoin;
      c.jobId = info.job;
      c.link.coord = parseAddress(info.coord);
      c.link.secret = info.secret;
      c.peers.setIdentity(info.job, info.secret);
      Object.assign(c.link.env, { CKPT_JOB_ID: info.job, CKPT_COORD: info.coord, CKPT_JOB_SECRET: info.secret });
      // Restored on another node: its peers reach it at that node's address.
      if (info.peerHost !== undefined) c.link.env.CKPT_PEER_HOST = info.peerHost;
    }
    await rejoin(c, outcome, listening);
  } catch (err) {
    process.stderr.write(`ckpt/rank: rank ${c.rank} cannot rejoin its job after a checkpoint: ${(err as Error).message}; exiting\n`);
    process.exit(70);
  }
}

/**
 * The coordinator connection a criu dump keeps open (`socket:[ino]`): a unix socket
 * (Node's Pipe handle), the node agent's relay or a local coordinator's; a TCP one is
 * closed and made again (CRIU would need the network lock for it).
 */
export function keptConnection(oob: Channel | undefined): string | undefined {
  const handle = (oob?.socket as unknown as { _handle?: { constructor?: { name?: string } } } | undefined)?._handle;
  const fd = socketFd(oob);
  if (oob?.isClosed !== false || handle?.constructor?.name !== 'Pipe' || fd === undefined) return undefined;
  return `socket:[${fstatSync(fd).ino}]`;
}

/** The original after its dump, on the connection it kept: listens for its peers again and reports. */
async function reportOnKept(c: DownHost, oob: Channel, outcome: DownOutcome, listening?: Promise<string>): Promise<void> {
  const peer = await (listening ?? c.link.listenForPeers(c.peers, c.link.coord, c.rank));
  // Closed while it was down (its end was not listened to then): the job is gone.
  if (oob.isClosed) throw new CkptError(ErrorCodes.OOB_UNREACHABLE, `its coordinator connection closed while it was down`);
  c.keepCoordinator();
  oob.send({ type: 'rejoined', rank: c.rank, pid: currentPid(), peer, markers: true, ...outcome.report });
}

/** The descriptor under a channel's socket (unix or TCP), if it has one. */
function socketFd(ch: Channel | undefined): number | undefined {
  const fd = (ch?.socket as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

async function rejoin(c: DownHost, outcome: DownOutcome, listening?: Promise<string>): Promise<void> {
  const link = c.link;
  // Both at once: the coordinator waits for this rank's report (the hello) to commit.
  const [peerAddress, socket] = await Promise.all([listening ?? link.listenForPeers(c.peers, link.coord, c.rank), connectTo(link.coord, link.connectTimeoutMs)]);
  const ch = new Channel(socket);
  const proven = proveHello(link.secret, { role: 'rank', job: c.jobId, rank: c.rank, to: formatAddress(link.coord) });
  const hello = { type: 'hello', v: OOB_PROTOCOL_VERSION, role: 'rank', job: c.jobId, rank: c.rank, pid: currentPid(), ...proven, peer: peerAddress, markers: true };
  if (!outcome.restored) {
    // The same coordinator: it waits for every rank to rejoin, commits, and sends ckpt-resume with the new peer addresses.
    ch.send({ ...hello, rejoin: true, ...outcome.report });
    // Nothing on this connection is taken before the coordinator proved the secret back.
    const back = await ch.next(link.joinTimeoutMs, 'the coordinator to take this rank back');
    requireAnswerOrRefusal(link.secret, 'welcome-back', proven.nonce, back, formatAddress(link.coord), "this job's coordinator", 'the coordinator refused this rank');
    c.attachCoordinator(ch);
    return;
  }
  // A restarted job: a fresh coordinator, joined like a new rank.
  ch.send({ ...hello, restored: true });
  const peers = await awaitWelcome(ch, c.size, link.joinTimeoutMs, { secret: link.secret, nonce: proven.nonce, coord: formatAddress(link.coord) });
  c.peers.knowPeers(peers);
  c.attachCoordinator(ch);
  await c.restored();
}

/**
 * The coordinator's welcome once every rank has joined: the peers' addresses. It
 * proves the job secret over our hello's nonce: only the job's coordinator may tell a
 * rank where its peers are.
 */
export async function awaitWelcome(ch: Channel, size: number, timeoutMs: number, hello: { secret: string; nonce: string; coord: string }): Promise<string[]> {
  const m = await ch.next(timeoutMs, 'the other ranks to join the job (welcome)');
  // A refusal or an abort before the welcome is taken only with its proof: else a stranger at that address could end this rank with a story of its own.
  if (m.type === 'abort') {
    requireAnswer(hello.secret, 'abort', hello.nonce, m, hello.coord, "this job's coordinator");
    throw new JobError(ErrorCodes.JOB_ABORTED, `job aborted: ${String(m.message)}`);
  }
  if (m.type !== 'welcome' && m.type !== 'error') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `expected welcome from the coordinator, got '${m.type}'`);
  requireAnswerOrRefusal(hello.secret, 'welcome', hello.nonce, m, hello.coord, "this job's coordinator", 'the coordinator refused this rank');
  const w = parse(welcomeMessage, m, 'the welcome');
  if (w.peers.length !== size) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `the welcome names ${w.peers.length} peers, the job has ${size}`);
  return w.peers;
}
