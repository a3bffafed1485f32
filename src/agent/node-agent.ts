// The node agent (`ckpt` started by srun, one per node): to its node what orted
// was to Open MPI's — it connects to the job's coordinator, starts and restores
// the node's ranks on its word, forwards their output and exits, signals them,
// and answers for the node (does it see the job's store?). It lives as long as
// its connection: when the coordinator goes, the node's ranks go. The protocol:
// docs/RUNTIME.md, "Across nodes".
import { hostname } from 'node:os';
import { CkptError, ErrorCodes } from '../errors.js';
import { Channel, connectTo, formatAddress, MAX_AGENT_CONTROL_BYTES, OOB_PROTOCOL_VERSION, parseAddress } from '../wire/channel.js';
import { proveHello, requireAnswerOrRefusal } from '../wire/hello-proof.js';
import type { ControlMessage } from '../wire/frame.js';
import { nodeAddress } from '../wire/host-address.js';
import { fanoutRequest, probeStore, relayClose, relayData, restoreRanks, signalRanks, stageCopy, startRank, terminateRanks } from '../wire/agent-messages.js';
import { copyStagedHere } from '../runtime/stage-copy.js';
import { RankRelay } from './rank-relay.js';
import { parse } from '../wire/validate.js';
import { heldTag } from '../util/writer-beacon.js';
import { NodeRanks } from './node-ranks.js';
import { probeStoreHere, restoreHere } from './node-restore.js';
import { reapOrphansEvery } from './orphans.js';

export interface AgentEnv {
  coord: string;
  job: string;
  secret: string;
  node: string;
  nodeIndex: number;
  bind?: string;
}

/** What srun hands the agent, checked. */
export function agentEnv(env: NodeJS.ProcessEnv): AgentEnv {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new CkptError(ErrorCodes.USAGE, `the node agent is started by ckpt run under Slurm, not by hand (${name} is not set)`);
    return v;
  };
  const index = Number(env.SLURM_PROCID ?? env.SLURM_NODEID ?? '0');
  return {
    coord: need('CKPT_AGENT_COORD'),
    job: need('CKPT_JOB_ID'),
    secret: need('CKPT_JOB_SECRET'),
    node: env.SLURMD_NODENAME || hostname(),
    nodeIndex: Number.isSafeInteger(index) && index >= 0 ? index : 0,
    ...(env.CKPT_AGENT_BIND ? { bind: env.CKPT_AGENT_BIND } : {}),
  };
}

/** Runs the agent to the end of its job; resolves with its exit status. */
export async function runNodeAgent(e: AgentEnv): Promise<number> {
  const address = await nodeAddress(e.bind);
  const coord = parseAddress(e.coord);
  const channel = new Channel(await connectTo(coord, 30_000, 'the job coordinator'));
  // Its tag (with its beacon held) names what it leaves on this node: --stage copies, its relay directory.
  const writer = await heldTag();
  const proven = proveHello(e.secret, { role: 'agent', job: e.job, to: formatAddress(coord) });
  channel.send({ type: 'hello', v: OOB_PROTOCOL_VERSION, role: 'agent', job: e.job, ...proven, node: e.node, nodeIndex: e.nodeIndex, pid: process.pid, address, ...(writer ? { writer } : {}) });
  // Refused, or never welcomed: its connection goes with it (it would keep the agent alive).
  const welcome = await channel.next(30_000, 'the coordinator to welcome this node').catch((err: unknown) => {
    channel.destroy();
    throw err;
  });
  // Whoever answers at that address must hold the secret too (its refusal as well): else no rank is started for it.
  try {
    requireAnswerOrRefusal(e.secret, 'welcome', proven.nonce, welcome, e.coord, "this job's coordinator", 'the coordinator refused this node');
  } catch (err) {
    channel.destroy();
    throw err;
  }
  // Welcomed: requests for all its ranks at once (a restart's states among them) may pass 1 MiB.
  channel.allowControl(MAX_AGENT_CONTROL_BYTES);
  // Ranks reach the coordinator through this agent, listen for their peers on the node's own address, and know their node.
  const relay = new RankRelay(channel);
  const relayed = await relay.listen();
  const ranks = new NodeRanks(channel, { CKPT_COORD: relayed, CKPT_PEER_HOST: address, SLURMD_NODENAME: e.node });
  // What a rank's criu dump leaves here (a zombie per rank per checkpoint) goes: orphans.ts.
  const stopReaping = reapOrphansEvery(1000, () => ranks.pids);
  const ending = new Promise<number>((resolve) => {
    channel.on('close', () => {
      stopReaping();
      // The job is over, or its coordinator is gone: nothing of it stays on this node.
      const live = ranks.live;
      relay.close();
      ranks.terminate(undefined, 0);
      void ranks.exited().then(() => resolve(live ? 1 : 0));
    });
  });
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => channel.close());
  // Slurm signals every process of the step; the ranks get theirs, the agent stays.
  for (const s of ['SIGUSR1', 'SIGUSR2', 'SIGCONT'] as const) process.on(s, () => {});
  channel.on('message', (m) => void serve(channel, { ranks, relay, relayed, address }, m));
  return ending;
}

interface NodeState {
  ranks: NodeRanks;
  relay: RankRelay;
  /** The relay's address: the coordinator, as this node's ranks reach it. */
  relayed: string;
  /** The node's own address, for its ranks' peers. */
  address: string;
}

async function serve(channel: Channel, node: NodeState, m: ControlMessage): Promise<void> {
  const { ranks, relay } = node;
  const reply = (body: Record<string, unknown>) => channel.send({ type: 'reply', id: m.id, ok: true, ...body });
  try {
    switch (m.type === 'request' ? m.op : m.type) {
      case 'start':
        return reply({ pid: ranks.start(parse(startRank, m, 'start')) });
      case 'restore':
        await restoreHere(parse(restoreRanks, m, 'restore'), ranks, { coord: node.relayed, peerHost: node.address });
        return reply({});
      case 'ping':
        return reply({});
      case 'fanout':
        return reply({ replies: await relay.fanout(parse(fanoutRequest, m, 'fanout')) });
      case 'relay': {
        const r = parse(relayData, m, 'relay');
        return relay.toRank(r.conn, Buffer.from(r.data, 'base64'));
      }
      case 'relay-close':
        return relay.closeRank(parse(relayClose, m, 'relay-close').conn);
      case 'probe-store': {
        const p = parse(probeStore, m, 'probe-store');
        return reply(await probeStoreHere(p.path, p.token, p.stage));
      }
      case 'stage-copy':
        return reply({ copied: await copyStagedHere(parse(stageCopy, m, 'stage-copy')) });
      case 'signal': {
        const s = parse(signalRanks, m, 'signal');
        return ranks.signal(s.rank, s.signal as NodeJS.Signals);
      }
      case 'terminate': {
        const t = parse(terminateRanks, m, 'terminate');
        return ranks.terminate(t.rank, t.graceMs);
      }
      default:
        throw new CkptError(ErrorCodes.OOB_PROTOCOL, `unexpected '${String(m.op ?? m.type)}' from the coordinator`);
    }
  } catch (err) {
    if (m.type === 'request') channel.send({ type: 'reply', id: m.id, ok: false, message: (err as Error).message });
    else channel.fail(err instanceof CkptError ? err : new CkptError(ErrorCodes.OOB_PROTOCOL, (err as Error).message));
  }
}
