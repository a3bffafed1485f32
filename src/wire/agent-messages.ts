// The node-agent protocol: one connection from each node's agent to the job's
// coordinator (docs/RUNTIME.md, "Across nodes"). The coordinator asks an agent to
// start or restore that node's ranks and to signal them; the agent reports each
// rank's output, start and exit. One validator per message, used by both sides.
import { array, bool, count, int, literal, nullable, object, optional, ProtocolError, str, unknown, type Check, type Checked } from './validate.js';

/** An environment: names to string values, nothing else. */
export const envRecord: Check<Record<string, string>> = (v, p) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError(`${p} must be an object of strings, got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`);
  for (const [k, x] of Object.entries(v)) str(x, `${p}.${k}`);
  return v as Record<string, string>;
};

/** agent → coordinator, first: who it is and where it runs. */
export const agentHello = object({
  node: str,
  /** Slurm's SLURM_NODEID of the agent's step (0..nodes-1). */
  nodeIndex: count,
  pid: int,
  /** The node's own address, for its ranks' peer listeners. */
  address: str,
  /** The agent's writer tag (util/writer-tag.ts): names the --stage directories it is to copy and remove. */
  writer: optional(str),
});
export type AgentHello = Checked<typeof agentHello>;

// ---- coordinator → agent (requests; the reply carries ok:false and message on failure) ----

export const startRank = object({ rank: count, command: str, args: array(str), env: envRecord, cwd: optional(str) });
export type StartRank = Checked<typeof startRank>;
export const startReply = object({ pid: int });

export const rejoinInfo = object({ coord: str, job: str, secret: str, peerHost: optional(str) });
/** Restore these ranks of a criu job snapshot on this node. */
export const restoreRanks = object({ snapshot: str, ranks: array(count), rejoin: rejoinInfo });
export type RestoreRanks = Checked<typeof restoreRanks>;

/** Reads the job's shared-storage probe: is the store the same directory here? */
export const probeStore = object({ path: str, token: str, stage: optional(str) });
/** `stageProblem`: why `stage` (--stage DIR) cannot be used on this node. */
export const probeReply = object({ seen: literal('yes', 'no'), message: optional(str), stageProblem: optional(str) });

/**
 * --stage: copy these ranks' staged directories into the pending snapshot (fsynced,
 * checksummed; reply: each rank's files relative to its `to`), then remove them;
 * `discard`: only remove them (a checkpoint that failed before its copy). `stage`: DIR,
 * where what writers that are gone left staged is removed first.
 */
export const stageCopy = object({ items: array(object({ rank: count, from: str, to: str })), discard: optional(bool), stage: optional(str) });
export type StageCopy = Checked<typeof stageCopy>;
export const stageCopyReply = object({ copied: array(object({ rank: count, files: array(object({ path: str, size: count, xxh64: str })) })) });

// ---- coordinator → agent, unasked ----

export const signalRanks = object({ type: literal('signal'), rank: optional(count), signal: str });
export const terminateRanks = object({ type: literal('terminate'), rank: optional(count), graceMs: count });

// ---- agent → coordinator, unasked ----

export const rankOutput = object({ type: literal('output'), rank: count, stream: literal('stdout', 'stderr'), data: str });
export const rankStarted = object({ type: literal('restored'), rank: count, pid: int });
export const rankExit = object({ type: literal('exit'), rank: count, code: nullable(int), signal: nullable(str) });

// ---- relayed rank connections (both ways; whole frames, base64) ----

/** A rank connected to its node's agent at `to` (the relay's address, which its hello names): stream `conn` is relayed from now on. */
export const relayOpen = object({ type: literal('relay-open'), conn: count, to: str });
export const relayData = object({ type: literal('relay'), conn: count, data: str });
export const relayClose = object({ type: literal('relay-close'), conn: count });

/**
 * coordinator → agent: one round of requests to this node's ranks, answered at once.
 * An item with `arrival` (self's reach round) sends the rank nothing: its own
 * unasked `arrived` report of checkpoint `seq` at `safePoint`, kept by the agent,
 * answers for it ({ written }).
 */
export const fanoutRequest = object({
  rankOp: str,
  items: array(object({ rank: count, body: unknown, arrival: optional(object({ seq: count, safePoint: count })) })),
  timeoutMs: count,
});
export type FanoutRequest = Checked<typeof fanoutRequest>;
/** Each rank's reply message (ok, fields), or why it has none. */
export const fanoutItem = object({ rank: count, reply: optional(unknown), error: optional(str), code: optional(str) });
export const fanoutReply = object({ replies: array(fanoutItem) });
