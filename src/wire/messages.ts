// The typed messages of the job protocol, one validator each, used by both sides:
// the coordinator checks what ranks send and ranks check what the coordinator
// sends with the same definitions. The protocol itself: docs/RUNTIME.md.
import { array, bool, count, int, literal, nullable, num, object, optional, str, unknown, type Checked } from './validate.js';

/** Frame counts per rank (what a rank wrote to, or read from, each peer). */
export const counts = array(count);

/** A file a rank wrote into the snapshot, made durable and checksummed itself. */
export const syncedFile = object({ path: optional(str), name: optional(str), size: count, xxh64: str });
export type SyncedFile = Checked<typeof syncedFile>;

// ---- coordinator → rank: checkpoint requests (type 'request', op …) ----------------

export const prepareRequest = object({ seq: count, store: str, dir: str, requested: optional(bool), crs: optional(str) });
export type PrepareRequest = Checked<typeof prepareRequest>;

export const reachRequest = object({ target: count });
export const drainRequest = object({ expected: counts });
export const saveRequest = object({ target: count, expected: optional(counts), rankDir: str, inlineBytes: optional(count) });
export type SaveRequest = Checked<typeof saveRequest>;
/** criu: `leaveStopped` — the checkpoint ends the job: the rank stays frozen after its dump (then killed, or continued if the commit fails). */
/** `staged`: rankDir is on the rank's node (--stage): the rank does not sync or checksum its images, its agent does after the copy. */
/**
 * `begin`: the checkpoint begins here (no prepare round): the rank holds its sends,
 * drains by markers (`marker`: the attempt's id) with its peers, runs its prepare
 * hooks, then goes down. Otherwise
 * it was prepared; `expected`: the drain folded into the dump (the rank said
 * `drainAtDump` in its prepare reply).
 */
export const dumpRequest = object({ rankDir: str, leaveStopped: optional(bool), staged: optional(bool), expected: optional(counts), begin: optional(prepareRequest), marker: optional(count) });
/** `terminate` (self): the snapshot is committed and ends the job — the rank exits from its safe point, never back in user code. */
export const resumeRequest = object({ outcome: literal('continue', 'abort', 'terminate'), seq: optional(count), peers: optional(array(str)) });
export type ResumeRequest = Checked<typeof resumeRequest>;

// ---- rank → coordinator: replies and unasked reports ---------------------------------

/** self: how many safe points the rank has passed. criu: what it wrote, and its process (see crs/criu). */
export const prepareReply = object({ safePoints: optional(count), written: optional(counts) });
export const reachReply = object({ written: counts });
export const inlineState = object({ binary: bool, state: str, library: str });
export const saveReply = object({ safePoint: count, saveMs: optional(num), reachMs: optional(num), inline: optional(inlineState), files: optional(array(unknown)) });
export type SaveReply = Checked<typeof saveReply>;

/** Unasked, at a rank's first safe point after a prepare (self). */
export const arrived = object({ type: literal('arrived'), seq: count, safePoint: count, written: counts });
export type Arrived = Checked<typeof arrived>;

/** A rank back from its CRIU dump, on its new connection. */
/** `process`: what its restore needs of its process (its checkpointer's fields, checked by it). */
export const rejoinHello = object({ dumped: literal('ok', 'error'), dumpMs: optional(num), dumpEndAt: optional(num), syncMs: optional(num), files: optional(array(unknown)), process: optional(unknown), message: optional(str), stopped: optional(bool) });
export type RejoinHello = Checked<typeof rejoinHello>;

/**
 * criu, a dump that leaves the rank stopped: sent on the rank's own connection, which
 * it handed to the shell that ran CRIU, once CRIU exited successfully (the rank is
 * frozen and cannot say so itself). Its bytes are fixed: see crs/criu/job-rank.ts.
 */
export const dumpedStopped = object({ type: literal('dumped') });

/** A rank's hello (join, rejoin after a dump, or a restored rank). */
/** `markers`: the rank drains by markers with its peers (a criu checkpoint needs no prepare round). */
/** `to`, `nonce`, `proof`: the job secret proven for the address it dialed (wire/hello-proof.ts). */
export const rankHello = object({ job: str, rank: int, pid: optional(int), to: str, nonce: str, proof: str, peer: str, rejoin: optional(bool), restored: optional(bool), markers: optional(bool) });
/**
 * On a peer link, after a rank held its sends for checkpoint attempt `id` (the
 * coordinator's, never reused: a snapshot's seq is, after an abort): nothing more comes
 * on this link before the checkpoint; `abort`: the rank takes no part in it.
 */
export const drainMarker = object({ type: literal('marker'), id: count, abort: optional(bool) });

// ---- coordinator → rank: unasked ------------------------------------------------------

export const welcome = object({ type: literal('welcome'), peers: array(str) });
/** A rank's process ended; `sent`: how many messages it sent the receiver (null: unknown). */
export const exited = object({ rank: count, sent: optional(nullable(count)) });
