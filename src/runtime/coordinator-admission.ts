// Admitting a connection to the coordinator. At most so many wait for their hello
// at once (HelloGate); the hello must come within the timeout, speak our protocol
// version and prove the job's secret for the address it dialed (wire/hello-proof.ts).
// The welcome proves the secret back. It then makes the connection a rank's
// (joining, or rejoining after its CRIU dump) or a control client's, and every later
// message goes to that role's handler. A refused connection is closed with its
// error and reported; the job goes on.
import type { Socket } from 'node:net';
import { CkptError, ErrorCodes } from '../errors.js';
import { Channel, HelloGate, MAX_AGENT_CONTROL_BYTES, OOB_PROTOCOL_VERSION, secretsEqual } from '../wire/channel.js';
import { helloProven, proveAnswer, refusalProof } from '../wire/hello-proof.js';
import type { ControlMessage } from '../wire/frame.js';
import { agentHello, type AgentHello } from '../wire/agent-messages.js';
import { parse } from '../wire/validate.js';

export type Hello = { role: 'control' } | { role: 'rank'; rank: number; rejoin: boolean } | { role: 'agent'; agent: AgentHello };

/** What admission needs of the coordinator. */
export interface AdmissionHost {
  readonly jobId: string;
  readonly size: number;
  readonly secret: string;
  /** Where it listens (formatted): a direct connection's hello must name it. */
  readonly address: string;
  readonly helloTimeoutMs: number;
  readonly gate: HelloGate;
  /** Every open connection (closed with the coordinator). */
  readonly channels: Set<Channel>;
  /** Throws (OOB_AUTH) when `rank` may not join, or rejoin, now. */
  checkRank(rank: number, rejoin: boolean): void;
  /** A rank's valid hello: it joins (or rejoins) the job on `channel`. */
  admitRank(rank: number, rejoin: boolean, channel: Channel, hello: ControlMessage): void;
  rankMessage(rank: number, channel: Channel, m: ControlMessage): void;
  /** A rank's connection closed. */
  rankClosed(rank: number, channel: Channel): void;
  controlMessage(channel: Channel, m: ControlMessage): void;
  /** A node agent's valid hello (throws OOB_AUTH when the job has no agents); its messages are then its own. */
  admitAgent(channel: Channel, hello: AgentHello): void;
  refused(err: CkptError): void;
}

/** Checks a hello's protocol, job and proof of the secret (dialed at one of `ours`), and what it claims to be. */
export function parseHello(m: ControlMessage, job: { jobId: string; secret: string; size: number }, ours: readonly string[]): Hello {
  const bad = (message: string) => new CkptError(ErrorCodes.OOB_PROTOCOL, message);
  if (m.type !== 'hello') throw bad(`expected hello, got '${m.type}'`);
  // A rank CRIU restored from an older ckpt's snapshot runs that ckpt's library, whose
  // hello (protocol 1) carries the secret itself: taken as it was, for that case only.
  const restoredOlder = m.v === 1 && m.role === 'rank' && m.restored === true;
  if (m.v !== OOB_PROTOCOL_VERSION && !restoredOlder) throw bad(`OOB protocol version ${String(m.v)} not supported (this coordinator speaks ${OOB_PROTOCOL_VERSION})`);
  if (m.job !== job.jobId || !(restoredOlder ? secretsEqual(m.secret, job.secret) : helloProven(job.secret, m, ours))) {
    throw new CkptError(ErrorCodes.OOB_AUTH, 'wrong job secret: this connection does not belong to the job');
  }
  if (m.role === 'control') return { role: 'control' };
  if (m.role === 'agent') return { role: 'agent', agent: parse(agentHello, m, 'the agent hello') };
  if (m.role !== 'rank') throw bad(`unknown role '${String(m.role)}'`);
  const rank = m.rank;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank >= job.size) {
    throw bad(`rank ${String(rank)} is outside this job of ${job.size}`);
  }
  if (typeof m.peer !== 'string') throw bad('hello without a peer address');
  return { role: 'rank', rank, rejoin: m.rejoin === true };
}

/** Takes a new connection through its hello to its role; `ours`: the addresses its hello may name (a relayed one: its agent's relay). */
export function admitConnection(socket: Socket, host: AdmissionHost, ours: readonly string[] = [host.address]): void {
  // Too many connections waiting for their hello: the one waiting longest goes.
  const authenticated = host.gate.admit(() => {
    socket.on('error', () => {});
    socket.destroy();
  });
  const channel = new Channel(socket);
  host.channels.add(channel);
  let hello: Hello | undefined;
  /** Its hello's nonce once the hello proved the secret: a refusal from then on proves it back (an unproven one may be a stranger's). */
  let proven: string | undefined;
  const refuse = (code: CkptError['code'], message: string) => {
    const err = new CkptError(code, message);
    channel.fail(err, refusalProof(host.secret, proven));
    host.refused(err);
  };
  // Counted until its socket is really closed (a refused one lingers up to a second for its error message).
  socket.once('close', authenticated);
  const helloTimer = setTimeout(() => refuse(ErrorCodes.TIMEOUT, `no hello within ${host.helloTimeoutMs} ms`), host.helloTimeoutMs);
  channel.on('close', (err) => {
    clearTimeout(helloTimer);
    host.channels.delete(channel);
    if (err && err.code === ErrorCodes.OOB_PROTOCOL) host.refused(err);
    if (hello?.role === 'rank') host.rankClosed(hello.rank, channel);
  });
  channel.on('frame', () => refuse(ErrorCodes.OOB_PROTOCOL, 'data frame on the control channel'));
  channel.on('message', (m) => {
    try {
      if (hello === undefined) {
        clearTimeout(helloTimer);
        const h = parseHello(m, host, ours);
        if (typeof m.nonce === 'string') {
          if (!host.gate.fresh(m.nonce)) throw new CkptError(ErrorCodes.OOB_AUTH, 'a hello this coordinator took before: replayed');
          proven = m.nonce;
        }
        if (h.role === 'rank') host.checkRank(h.rank, h.rejoin);
        authenticated();
        hello = h;
        // A rank back from its dump on a new connection takes nothing on it before this proof.
        if (h.role === 'rank' && h.rejoin) channel.send({ type: 'welcome-back', proof: proveAnswer(host.secret, 'welcome-back', m.nonce as string) });
        if (h.role === 'rank') host.admitRank(h.rank, h.rejoin, channel, m);
        else {
          if (h.role === 'agent') {
            channel.allowControl(MAX_AGENT_CONTROL_BYTES);
            host.admitAgent(channel, h.agent);
          }
          channel.send({ type: 'welcome', v: OOB_PROTOCOL_VERSION, job: host.jobId, size: host.size, proof: proveAnswer(host.secret, 'welcome', m.nonce as string) });
        }
        return;
      }
      if (hello.role === 'rank') host.rankMessage(hello.rank, channel, m);
      else if (hello.role === 'control') host.controlMessage(channel, m);
      // an agent's messages go to its link (runtime/node-agent-link.ts)
    } catch (err) {
      if (err instanceof CkptError) refuse(err.code, err.message);
      else throw err;
    }
  });
}
