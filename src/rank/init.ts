// init(): a rank joins the job `ckpt run` started it in (its CKPT_* environment):
// it listens for its peers, says hello to the coordinator, and links up with every
// peer on the welcome. A rank of a job restarted from a self snapshot first reads
// its part of it. Without that environment: a communicator of size 1.
import { CkptError, ErrorCodes } from '../errors.js';
import { envNumber } from '../config.js';
import { restartSelfRank, savedState } from '../crs/self/job-rank.js';
import { guardInspector } from '../util/inspector.js';
import { Channel, connectTo, formatAddress, helloTimeoutMs, OOB_PROTOCOL_VERSION, parseAddress, type Address } from '../wire/channel.js';
import { proveHello } from '../wire/hello-proof.js';
import { MAX_DATA_BYTES, type Frame } from '../wire/frame.js';
import { timeoutOf } from './arguments.js';
import { connectorFor } from '../wire/connector.js';
import { restartHooks } from './checkpoint/hooks.js';
import type { RawMessage } from './codec.js';
import { Comm } from './comm.js';
import { awaitWelcome, type CoordinatorLink } from './coordinator-link.js';
import { PeerNetwork } from './peers.js';
import { loadRestart } from './state.js';

export interface InitOptions {
  /** Default timeout of every wait (recv, collectives), ms. Env CKPT_TIMEOUT_MS; default 10 minutes. */
  timeoutMs?: number;
  /** Largest message accepted from a peer. */
  maxMessageBytes?: number;
  /** When the coordinator goes away unexpectedly, exit the process (default) or only fail pending operations. */
  onCoordinatorLost?: 'exit' | 'error';
  /**
   * When the job is aborted (another rank failed, or a kill), exit this process
   * at once and quietly (default: the launcher reports the cause once) or only
   * fail pending operations with JOB_ABORTED.
   */
  onAbort?: 'exit' | 'error';
  /** The environment to read CKPT_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The job this process joined through its own environment: a rank is in its job once. */
let joined: Promise<Comm> | undefined;

/**
 * Joins the job this process was started in by `ckpt run` (CKPT_* environment).
 * Without that environment, returns a communicator of size 1 (a "singleton").
 * Called again, returns the first call's communicator (a library of the program may
 * call it too); with `env` given, joins as that environment says (tests, embedders).
 */
export function init(options: InitOptions = {}): Promise<Comm> {
  if (options.env !== undefined || process.env.CKPT_JOB_ID === undefined) return initOnce(options);
  joined ??= initOnce(options).catch((err: unknown) => {
    joined = undefined;
    throw err;
  });
  return joined;
}

async function initOnce(options: InitOptions): Promise<Comm> {
  const env = options.env ?? process.env;
  const timeoutMs = timeoutOf(options.timeoutMs, 'init') ?? envNumber('CKPT_TIMEOUT_MS', env);
  // The scheduler's SIGUSR1 reaches every rank: it must not open a debugger port, and
  // one Node opened on a SIGUSR1 during its start-up is closed while the rank joins.
  const inspectorGuarded = guardInspector((line) => process.stderr.write(`ckpt: rank ${env.CKPT_RANK ?? 0}: ${line}\n`));
  if (env.CKPT_JOB_ID === undefined) return new Comm(0, 1, 'singleton', timeoutMs, undefined, undefined);

  const rank = envNumber('CKPT_RANK', env);
  const size = envNumber('CKPT_SIZE', env);
  const jobId = env.CKPT_JOB_ID;
  const coord = env.CKPT_COORD;
  const secret = env.CKPT_JOB_SECRET ?? '';
  if (rank === undefined || size === undefined || coord === undefined || rank >= size) {
    throw new CkptError(ErrorCodes.USAGE, 'incomplete ckpt environment: CKPT_RANK, CKPT_SIZE and CKPT_COORD must be set (start ranks with ckpt run)');
  }
  // A rank of a job restarted from a snapshot resumes from its part of it: read while
  // the coordinator waits for the other ranks (after our hello, before the welcome).
  let restart: ReturnType<typeof loadRestart> | undefined;
  const restartDir = env.CKPT_RESTART_SNAPSHOT;
  delete env.CKPT_RESTART_SNAPSHOT;
  const coordAddress = parseAddress(coord);
  const connectTimeoutMs = envNumber('CKPT_CONNECT_TIMEOUT_MS', env);
  const joinTimeoutMs = envNumber('CKPT_JOIN_TIMEOUT_MS', env);
  const socket = await connectTo(coordAddress, connectTimeoutMs);
  const oob = new Channel(socket);

  let comm: Comm | undefined;
  // Peers may send as soon as they have their welcome, a moment before we have ours.
  const early: RawMessage[] = [];
  const peers = new PeerNetwork({
    rank,
    size,
    jobId,
    secret,
    maxMessageBytes: options.maxMessageBytes ?? MAX_DATA_BYTES,
    linkTimeoutMs: joinTimeoutMs,
    helloTimeoutMs: helloTimeoutMs(env),
    bodyFor: (source, kind, tag, length) => comm?.claimBody(source, kind, tag, length),
    onFrame: (source: number, frame: Frame) => {
      const m = { source, tag: frame.tag, kind: frame.kind, payload: frame.payload };
      if (comm) comm.deliver(m);
      else early.push(m);
    },
    onPeerEnd: (source) => comm?.peerGone(source, undefined),
    // A broken peer link usually means that peer died, and the coordinator's abort
    // is on its way: give it a moment so the job ends with the real cause.
    onFatal: (err) => setTimeout(() => comm?.fail(err), 1000).unref(),
  });
  try {
    const peerAddress = await listenForPeers(peers, coordAddress, rank, env);
    const proven = proveHello(secret, { role: 'rank', job: jobId, rank, to: formatAddress(coordAddress) });
    oob.send({ type: 'hello', v: OOB_PROTOCOL_VERSION, role: 'rank', job: jobId, rank, pid: process.pid, ...proven, peer: peerAddress, markers: true });
    const welcome = awaitWelcome(oob, size, joinTimeoutMs, { secret, nonce: proven.nonce, coord });
    welcome.catch(() => {});
    if (restartDir) {
      try {
        restart = loadRestart(restartDir, rank, size);
      } catch (err) {
        cannotRestart(rank, err);
      }
    }
    // The coordinator enforces the join timeout and tells us; ours is only a backstop.
    peers.knowPeers(await welcome);
  } catch (err) {
    oob.destroy();
    peers.close();
    throw err;
  }
  const link: CoordinatorLink = {
    coord: coordAddress,
    secret,
    env,
    connectTimeoutMs,
    joinTimeoutMs,
    onAbort: options.onAbort ?? 'exit',
    onCoordinatorLost: options.onCoordinatorLost ?? 'exit',
    listenForPeers: (p, coord, r) => listenForPeers(p, coord, r, env),
  };
  const from = restart?.from;
  // A self rank's first safe point: the library takes up its safe-point count, then load() and the restart hooks.
  const restarted = from
    ? async (agent: { safePoints: number }) => {
        agent.safePoints = from.safePoint;
        let state: unknown;
        try {
          state = savedState(rank, from);
        } catch (err) {
          cannotRestart(rank, err);
        }
        return restartHooks(await restartSelfRank(rank, from, state));
      }
    : undefined;
  comm = new Comm(rank, size, jobId, timeoutMs, peers, oob, restarted, link);
  const c = comm;
  if (restart) c.restoreState(restart.library);
  for (const m of early) c.deliver(m);
  c.attachCoordinator(oob);
  await inspectorGuarded;
  return comm;
}

/** Listens for the peers where the connector says (this host's address, see wire/connector.ts); returns the address to hand out. */
async function listenForPeers(peers: PeerNetwork, coord: Address, rank: number, env: NodeJS.ProcessEnv): Promise<string> {
  const connector = connectorFor(coord, env);
  return peers.listen(await connector.listenAddress(`r${rank}`), connector);
}

/**
 * A restarted rank that cannot read its part of the snapshot has nothing to run: one
 * line, and it exits (70), which ends the job with a line naming the rank. Thrown into
 * the program's `await init()`, it would print a stack through the library's bundle.
 */
function cannotRestart(rank: number, err: unknown): never {
  const e = err as Partial<CkptError>;
  process.stderr.write(`ckpt/rank: rank ${rank} cannot restart from its snapshot: ${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}; exiting\n`);
  process.exit(70);
}
