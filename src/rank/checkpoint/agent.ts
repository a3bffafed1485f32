// The rank's side of a coordinated checkpoint (docs/RUNTIME.md is the protocol).
// The agent keeps the rank's checkpoint session and dispatches the coordinator's
// requests to its participants, in DMTCP's manner: the peer links (hold, drain,
// re-link), the library's own state (safe points), the user's hooks, and the
// job's checkpointer component (crs/self, crs/criu: its RankCheckpointer half).
import { CkptError, ErrorCodes } from '../../errors.js';
import type { CheckpointResult } from '../../crs/hooks.js';
import type { RankCheckpointer, RankHost } from '../../crs/job.js';
import { FALLBACK_JOB_CHECKPOINTER, jobCheckpointer } from '../../crs/job-registry.js';
import { faultPoint, FAULT_POINTS, type FaultPoint } from '../../util/faults.js';
import type { ControlMessage } from '../../wire/frame.js';
import { parse } from '../../wire/validate.js';
import { drainRequest, dumpRequest, prepareRequest, reachRequest, resumeRequest, saveRequest } from '../../wire/messages.js';
import type { PeerNetwork } from '../peers.js';
import { continueHooks, prepareHooks, restartHooks } from './hooks.js';
import { PeersParticipant } from './peers.js';
import { RequestedCheckpoints } from './requested.js';
import { Session } from './session.js';
import { exitAtSnapshot } from './terminate.js';

/** What the agent needs of the communicator. */
export interface AgentHost extends Omit<RankHost, 'safePoints'> {
  /** Sends a message to the coordinator, unasked (self: `arrived`). */
  tellCoordinator(message: ControlMessage): void;
}

/** Replies to the request being handled before it is over (criu: the rank goes down after it). */
export type ReplyEarly = (body: Record<string, unknown>) => Promise<void>;

export class CheckpointAgent {
  safePoints = 0;
  readonly requested = new RequestedCheckpoints();
  private session: Session | undefined;
  private pendingWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly peers: PeersParticipant;
  private readonly halves = new Map<string, RankCheckpointer>();
  /** A restarted rank's first safe point (self) or its rejoin (criu) reports `restart`. */
  private restart: (() => Promise<CheckpointResult>) | undefined;

  constructor(
    private readonly host: AgentHost,
    peers: PeerNetwork | undefined,
    restart?: () => Promise<CheckpointResult>,
  ) {
    this.peers = new PeersParticipant(host.rank, peers);
    this.restart = restart;
  }

  /** The component's rank half (one per component, made on first use). */
  private half(crs: string): RankCheckpointer {
    let h = this.halves.get(crs);
    if (!h) {
      const agent = this;
      const host = this.host;
      h = jobCheckpointer(crs).rank({
        get rank() {
          return host.rank;
        },
        get size() {
          return host.size;
        },
        get isFinalized() {
          return host.isFinalized;
        },
        get safePoints() {
          return agent.safePoints;
        },
        captureLibrary: () => host.captureLibrary(),
        goDown: (reply, dump, handOff) => host.goDown(reply, dump, handOff),
        keptConnection: () => host.keptConnection(),
      });
      this.halves.set(crs, h);
    }
    return h;
  }

  get isPending(): boolean {
    return this.session !== undefined;
  }

  /** Whether the pending checkpoint stops ranks at a safe point (self), if one is pending. */
  get pendingAtSafePoint(): boolean | undefined {
    return this.session?.half.atSafePoint;
  }

  /** The ordinal of the pending checkpoint, if a rank requested it. */
  get pendingRequested(): number | undefined {
    return this.session?.requested;
  }

  /** Resolves once a checkpoint has been announced (ckpt-prepare). */
  whenPending(): Promise<void> {
    if (this.session) return Promise.resolve();
    return new Promise((resolve) => this.pendingWaiters.push(resolve));
  }

  /** Resolves once no checkpoint is pending (finalize waits for it). */
  whenIdle(): Promise<void> {
    if (!this.session) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settle(s: Session, result: CheckpointResult | null): void {
    s.outcome.resolve(result);
    if (s.requested !== undefined) this.requested.settle(s.requested, result);
  }

  /** `s` is no longer pending: its component lets go of what it held for it. */
  private detach(s: Session): void {
    if (this.session === s) this.session = undefined;
    if (!s.detached) {
      s.detached = true;
      s.half.end?.(s);
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Ends `s` (an abort, or a prepare that finds it abandoned): waits in it give up; then its requests are waited for. */
  private async end(s: Session): Promise<void> {
    if (s.state !== 'ended') s.to('ended', 'the end of the checkpoint');
    s.targetKnown.resolve();
    await Promise.allSettled([...s.work]);
  }

  /** A restored copy (criu) has rejoined and re-linked: sends go out again, `restart` is reported. */
  async restored(): Promise<void> {
    const s = this.session;
    if (!s?.half.restarted) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: restored without a pending checkpoint`);
    const result = await s.half.restarted();
    this.detach(s);
    s.to('ended', 'the restore');
    this.peers.release();
    this.settle(s, await restartHooks(result));
  }

  /** The outcome of this rank's k-th comm.checkpoint() call: the job's k-th rank-requested checkpoint. */
  async requestedOutcome(k: number): Promise<CheckpointResult | null> {
    for (;;) {
      if (this.requested.isPrepared(k) && this.pendingRequested !== k) return this.requested.result(k);
      await Promise.race([this.whenPending(), this.requested.whenPrepared(k)]);
      if (this.pendingAtSafePoint === true) {
        // Another checkpoint may come first: this rank stops at its safe point too.
        const mine = this.pendingRequested === k;
        const result = await this.safePoint();
        if (mine && (result || !this.isPending)) return result;
        continue;
      }
      if (this.requested.isPrepared(k)) return this.requested.result(k);
      // A checkpoint that takes ranks wherever they are, and not ours: it needs nothing from us.
      await this.whenIdle();
    }
  }

  /**
   * A safe point: where everything the program needs is in what save() returns.
   * Resolves null at once unless a checkpoint stops here; then it resolves with
   * the checkpoint's result (continue), or — first thing in a restarted rank — restart.
   */
  async safePoint(): Promise<CheckpointResult | null> {
    if (this.restart) {
      const restart = this.restart;
      this.restart = undefined;
      return restart();
    }
    this.safePoints++;
    const s = this.session;
    if (!s || !s.half.atSafePoint) return null;
    if (s.target === undefined) {
      if (!s.reported) {
        // Perhaps the target: hold sends, so that what we report written stays true,
        // and say where we stand (the coordinator then needs no reach round for us).
        s.reported = true;
        await faultPoint('arrived', this.host.rank);
        this.peers.hold();
        this.host.tellCoordinator({ type: 'arrived', seq: s.seq, safePoint: this.safePoints, written: this.peers.written() });
      }
      const heldFrom = performance.now();
      await s.targetKnown.promise;
      s.heldMs += performance.now() - heldFrom;
    }
    if (this.session !== s || s.target === undefined || this.safePoints !== s.target || s.isOver) {
      // Not this one (or the checkpoint is over): sends go out again.
      if (this.session === s) this.peers.release();
      return null;
    }
    this.peers.hold();
    s.to('at-target', 'the target safe point');
    s.atTargetAt = performance.now();
    s.arrived.resolve();
    return s.outcome.promise;
  }

  /**
   * Handles one ckpt-* request; resolves to the reply's body, or undefined when
   * `replyEarly` was used. A request of the pending checkpoint is tracked until it
   * is answered: an abort (ckpt-resume) is answered only once none of them can
   * still write into the snapshot.
   */
  handle(m: ControlMessage, replyEarly: ReplyEarly): Promise<Record<string, unknown> | undefined> {
    const s = this.session;
    const run = this.handleOp(m, replyEarly);
    // A request that begins a checkpoint is not the pending one's (it may end that one: a stale session).
    const begins = m.op === 'ckpt-prepare' || (m.op === 'ckpt-dump' && m.begin !== undefined);
    if (s && !begins && m.op !== 'ckpt-resume') track(s, run);
    return run;
  }

  private need(op: string): Session {
    if (!this.session) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: ${op} but no checkpoint is pending`);
    return this.session;
  }

  private async handleOp(m: ControlMessage, replyEarly: ReplyEarly): Promise<Record<string, unknown> | undefined> {
    const op = String(m.op);
    const point = op.replace(/^ckpt-/, '');
    if ((FAULT_POINTS as readonly string[]).includes(point)) await faultPoint(point as FaultPoint, this.host.rank);
    switch (op) {
      case 'ckpt-prepare':
        return this.prepare(m);
      case 'ckpt-reach': {
        const s = this.need(op);
        if (!s.half.atSafePoint || s.state !== 'prepared') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: ckpt-reach in state '${s.state}' of a ${s.crs} checkpoint`);
        s.target = parse(reachRequest, m, 'ckpt-reach').target;
        s.targetKnown.resolve();
        await s.until(s.arrived.promise);
        return { written: this.peers.written() };
      }
      case 'ckpt-drain':
        // A round of its own for a coordinator that does not fold it into the dump.
        await this.drainAndHooks(this.need(op), op, parse(drainRequest, m, 'ckpt-drain').expected);
        return {};
      case 'ckpt-save':
        return this.save(this.need(op), m);
      case 'ckpt-dump': {
        let req;
        try {
          req = parse(dumpRequest, m, 'ckpt-dump');
        } catch (err) {
          // A malformed request that begins a checkpoint: no peer may wait for this rank's marker.
          if (m.begin !== undefined && Number.isSafeInteger(m.marker)) this.peers.sendMarkers(m.marker as number, true);
          throw err;
        }
        if (req.begin) return this.beginAtDump(req.begin, req.marker, m, replyEarly);
        const s = this.need(op);
        const { expected } = req;
        // The drain folded into the dump: this rank drains and runs its hooks, then goes
        // down, while others may be down already (their closed links end after all they sent).
        if (expected !== undefined) await this.drainAndHooks(s, op, expected);
        s.to('down', op);
        return s.half.checkpoint(s, m, replyEarly);
      }
      case 'ckpt-resume':
        return this.resume(m);
      default:
        throw new CkptError(ErrorCodes.OOB_PROTOCOL, `unknown checkpoint operation '${op}'`);
    }
  }

  private async prepare(m: Record<string, unknown>): Promise<Record<string, unknown>> {
    const req = parse(prepareRequest, m, 'ckpt-prepare');
    const stale = this.session;
    if (stale) {
      // A criu rank back from its dump needs the resume's addresses to link up again.
      if (stale.state === 'down') throw new CkptError(ErrorCodes.CHECKPOINT_BUSY, `rank ${this.host.rank}: a checkpoint is already pending`);
      // The coordinator takes one checkpoint at a time and ends each with ckpt-resume
      // before the next prepare: this one was abandoned (its resume lost). It ends
      // here as an abort would end it.
      this.detach(stale);
      await this.end(stale);
      this.settle(stale, null);
      this.peers.release();
      if (this.session) throw new CkptError(ErrorCodes.CHECKPOINT_BUSY, `rank ${this.host.rank}: a checkpoint is already pending`);
    }
    const crs = req.crs ?? FALLBACK_JOB_CHECKPOINTER;
    const half = this.half(crs);
    // Taken wherever it is: a rank that has finalized has left the job.
    if (!half.atSafePoint && this.host.isFinalized) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${this.host.rank} has finalized`);
    const s = new Session(this.host.rank, crs, req.seq, req.store, req.dir, half);
    // Pending at once: requests are handled in their order, and an abort that
    // arrives while the links come up must find this checkpoint to end it.
    this.session = s;
    let extra: Record<string, unknown> = {};
    if (!half.atSafePoint) {
      try {
        await this.peers.linked(10_000);
        s.check();
        extra = (await half.prepare?.(s)) ?? {};
      } catch (err) {
        if (this.session === s) {
          this.detach(s);
          this.settle(s, null);
        }
        throw err;
      }
      // No safe point to reach: sends are held from now on.
      this.peers.hold();
    }
    if (req.requested === true) s.requested = this.requested.announce();
    for (const w of this.pendingWaiters.splice(0)) w();
    return half.atSafePoint ? { safePoints: this.safePoints } : { written: this.peers.written(), ...extra };
  }

  /**
   * criu in one round: the checkpoint begins at the dump request. The rank holds its
   * sends and puts a marker on every link behind what it sent; once every peer's
   * marker is in, nothing is in flight to it (each link is one ordered stream). Then
   * the prepare hooks, and down. A rank that cannot begin says so on every link, so
   * that no peer waits for its marker.
   */
  private async beginAtDump(begin: Record<string, unknown>, marker: number | undefined, m: ControlMessage, replyEarly: ReplyEarly): Promise<Record<string, unknown> | undefined> {
    if (marker === undefined) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: a checkpoint begun at its dump needs a marker id`);
    let s: Session;
    try {
      await this.prepare(begin);
      s = this.need('ckpt-dump');
    } catch (err) {
      this.peers.sendMarkers(marker, true);
      throw err;
    }
    this.peers.sendMarkers(marker);
    // Tracked as the session's work: an abort is answered once none of it can write into the snapshot.
    const run = (async () => {
      // While the peers' markers travel: what the component can ready before the drain.
      s.half.ahead?.(s, m);
      s.to('drained', 'ckpt-dump');
      await this.peers.markersIn(s, marker);
      await prepareHooks(s);
      s.to('down', 'ckpt-dump');
      return s.half.checkpoint(s, m, replyEarly);
    })();
    return track(s, run);
  }

  /** criu: nothing in flight to this rank, then the prepare hooks (a hook that fails aborts the checkpoint). */
  private async drainAndHooks(s: Session, op: string, expected: number[]): Promise<void> {
    s.to('drained', op);
    await this.peers.drained(s, expected);
    await prepareHooks(s);
  }

  /** self: at the target, drained (nothing in flight to us), hooks, then the component saves. */
  private async save(s: Session, m: ControlMessage): Promise<Record<string, unknown> | undefined> {
    const req = parse(saveRequest, m, 'ckpt-save');
    if (!s.half.atSafePoint) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: ckpt-save in a ${s.crs} checkpoint`);
    if (s.target === undefined) {
      // We reported standing at the target, unasked: this confirms it.
      if (!s.reported) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.host.rank}: ckpt-save before its safe point`);
      s.target = req.target;
      s.targetKnown.resolve();
    }
    await s.until(s.arrived.promise);
    if (req.expected !== undefined) await this.peers.drained(s, req.expected);
    await prepareHooks(s);
    const reply = await s.half.checkpoint(s, m, async () => {});
    s.check();
    s.to('saved', 'ckpt-save');
    return reply;
  }

  private async resume(m: ControlMessage): Promise<Record<string, unknown>> {
    const req = parse(resumeRequest, m, 'ckpt-resume');
    const s = this.session;
    // Committed, and the checkpoint ends the job: the rank waiting at its safe point
    // never returns to the program (no reply: the coordinator does not wait for one).
    if (req.outcome === 'terminate' && s) return exitAtSnapshot();
    if (s && !s.half.atSafePoint) this.peers.relink(s.state === 'down', req.peers);
    if (s) this.detach(s);
    this.peers.release();
    if (!s) return {};
    if (req.outcome !== 'continue') {
      // Answered once none of this checkpoint's requests can still write into its
      // snapshot: the coordinator removes the partial directory after every rank
      // has answered (a save() under way is waited for, and writes nothing).
      await this.end(s);
      this.settle(s, await continueHooks(s, true));
      return {};
    }
    void this.end(s);
    this.settle(s, await continueHooks(s, false));
    return {};
  }
}

/** `run` is work of checkpoint `s` until it settles (an abort is answered only after it). */
function track<T>(s: Session, run: Promise<T>): Promise<T> {
  s.work.add(run);
  const done = () => s.work.delete(run);
  run.then(done, done);
  return run;
}
