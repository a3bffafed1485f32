// MPI-style matching: messages from one source arrive in the order sent (one
// stream per sender); a receive takes the earliest arrived message that matches
// its (source, tag), so delivery is in order per (source, tag). Unmatched arrivals
// wait in a queue; receives wait in another, each with its deadline.
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import { FrameKind } from '../wire/frame.js';
import type { RawMessage } from './codec.js';
import { Deadlines } from './deadlines.js';

/** Matches a message from any rank. */
export const ANY_SOURCE = -1;
/** Matches any user tag (never the library's internal, negative tags). */
export const ANY_TAG = -1;

interface Posted {
  source: number;
  tag: number;
  what: string;
  into?: Uint8Array;
  resolve: (m: RawMessage) => void;
  reject: (e: Error) => void;
  /** When it times out (performance.now()); Infinity: never, or settled. */
  deadline: number;
  expire: () => void;
}

export function matches(source: number, tag: number, m: { source: number; tag: number }): boolean {
  return (source === ANY_SOURCE || source === m.source) && (tag === ANY_TAG ? m.tag >= 0 : tag === m.tag);
}

export class Mailbox {
  /** Arrived, unmatched messages, in arrival order (a self checkpoint saves them). */
  readonly unexpected: RawMessage[] = [];
  /** Messages received from each rank. */
  readonly received: number[];
  private readonly posted: Posted[] = [];
  private readonly deadlines = new Deadlines();
  /** Receives matched to a large message whose bytes are still being read into their `into`, by that buffer. */
  private readonly claimed = new Map<Buffer, Posted>();
  /** For ranks known to have exited: how many messages they sent us (null: unknown). */
  private readonly exited = new Map<number, number | null>();
  private fatal: CkptError | undefined;

  constructor(
    private readonly rank: number,
    private readonly size: number,
    /** A posted receive keeps the process alive (+1 while it waits, -1 once settled). */
    private readonly hold: (delta: number) => void,
    /** Whether rank r's stream to us has ended. */
    private readonly streamEnded: (r: number) => boolean,
  ) {
    this.received = new Array(size).fill(0);
  }

  /** The error every operation fails with once the job is over for this rank. */
  get failure(): CkptError | undefined {
    return this.fatal;
  }

  recv(source: number, tag: number, what: string, timeout: number, into?: Uint8Array): Promise<RawMessage> {
    if (this.fatal) return Promise.reject(this.waitError(this.fatal, what));
    const i = this.unexpected.findIndex((m) => matches(source, tag, m));
    if (i >= 0) return Promise.resolve(this.unexpected.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const entry: Posted = {
        source,
        tag,
        what,
        into,
        resolve,
        reject,
        deadline: timeout > 0 ? performance.now() + timeout : Infinity,
        expire: () => {
          this.unpost(entry);
          reject(new CkptError(ErrorCodes.TIMEOUT, `rank ${this.rank} timed out after ${timeout} ms in ${what}`, { details: { rank: this.rank } }));
        },
      };
      this.deadlines.add(entry);
      this.posted.push(entry);
      this.hold(1);
      const dead = this.unreachable(entry);
      if (dead) {
        this.unpost(entry);
        reject(dead);
      }
    });
  }

  /**
   * A bytes message's header is in: if the receive it matches (the first posted
   * one, as deliver() would pick) brought a buffer it fits in, the message is
   * matched now and its bytes are read straight into that buffer.
   */
  claimBody(source: number, kind: FrameKind, tag: number, length: number): Buffer | undefined {
    if (kind !== FrameKind.BYTES) return undefined;
    const i = this.posted.findIndex((p) => matches(p.source, p.tag, { source, tag }));
    const p = this.posted[i];
    if (!p?.into || p.into.byteLength < length) return undefined;
    this.posted.splice(i, 1);
    // Its bytes are arriving: no timeout cuts them off (a broken link fails it instead).
    this.deadlines.remove(p);
    const body = Buffer.from(p.into.buffer, p.into.byteOffset, length);
    this.claimed.set(body, p);
    return body;
  }

  deliver(m: RawMessage): void {
    this.received[m.source]!++;
    const claimed = this.claimed.get(m.payload);
    if (claimed) {
      this.claimed.delete(m.payload);
      this.settle(claimed);
      claimed.resolve(m);
      return;
    }
    for (let i = 0; i < this.posted.length; i++) {
      const p = this.posted[i]!;
      if (matches(p.source, p.tag, m)) {
        this.posted.splice(i, 1);
        this.settle(p);
        p.resolve(m);
        return;
      }
    }
    this.unexpected.push(m);
  }

  /** A peer finished: fail receives that nothing can satisfy any more. */
  peerGone(rank: number, sentToUs: number | null | undefined): void {
    if (sentToUs !== undefined) this.exited.set(rank, sentToUs);
    for (const p of [...this.posted]) {
      const err = this.unreachable(p);
      if (err) {
        this.unpost(p);
        p.reject(err);
      }
    }
  }

  /** The job is over for this rank: every pending and later operation fails with `err`. */
  fail(err: CkptError): void {
    if (this.fatal) return;
    this.fatal = err;
    for (const p of [...this.posted.splice(0), ...this.claimed.values()]) {
      this.settle(p);
      p.reject(this.waitError(err, p.what));
    }
    this.claimed.clear();
  }

  private waitError(err: CkptError, what: string): CkptError {
    return new CkptError(err.code, `rank ${this.rank}: ${err.message} (in ${what})`, { cause: err, details: err.details });
  }

  /** Why a posted receive can never be satisfied, if it cannot. */
  private unreachable(p: Posted): CkptError | undefined {
    const done = (r: number) => {
      if (r === this.rank) return false;
      if (!this.exited.has(r)) return false;
      const sent = this.exited.get(r);
      if (sent === null || sent === undefined) return this.streamEnded(r);
      return this.received[r]! >= sent;
    };
    if (p.source !== ANY_SOURCE) {
      return done(p.source)
        ? new JobError(ErrorCodes.JOB_ABORTED, `rank ${this.rank}: rank ${p.source} exited without sending what ${p.what} waits for`)
        : undefined;
    }
    for (let r = 0; r < this.size; r++) if (!done(r) && r !== this.rank) return undefined;
    // Only this rank could still send: possible (from another async task) but a
    // likely deadlock when the job has others; keep waiting in a singleton.
    return this.size > 1 ? new JobError(ErrorCodes.JOB_ABORTED, `rank ${this.rank}: every other rank exited while ${p.what} waited`) : undefined;
  }

  private unpost(p: Posted): void {
    const i = this.posted.indexOf(p);
    if (i >= 0) this.posted.splice(i, 1);
    this.settle(p);
  }

  private settle(p: Posted): void {
    this.deadlines.remove(p);
    this.hold(-1);
  }
}
