// self checkpoints across nodes: the `arrived` reports of the node's ranks (each
// rank's unasked word that it stands at its first safe point after a prepare), kept
// at the agent instead of being relayed one by one. The coordinator's reach round
// asks the agent for them in its fan-out (an item with `arrival`), and the agent
// answers for all its ranks in one message: no per-rank message crosses the
// agent's link. docs/RUNTIME.md, "Across nodes".
import { ErrorCodes } from '../errors.js';
import type { ControlMessage } from '../wire/frame.js';
import { arrived, type Arrived } from '../wire/messages.js';
import { parse } from '../wire/validate.js';

/** A fan-out item's answer: the rank's reply body, or why it has none. */
export type ArrivalAnswer = { reply: { type: 'reply'; ok: true; written: number[] } } | { error: string; code: string };

interface Waiter {
  seq: number;
  safePoint: number;
  answer: (a: ArrivalAnswer) => void;
}

export class RankArrivals {
  /** Each rank's latest report (a new checkpoint's replaces the last one's). */
  private readonly latest = new Map<number, Arrived>();
  private readonly waiters = new Map<number, Set<Waiter>>();

  /** A rank's `arrived` message (validated here: it comes from a process of the job, but checked all the same). */
  reported(rank: number, m: ControlMessage): void {
    const a = parse(arrived, m, `rank ${rank}'s arrived`);
    this.latest.set(rank, a);
    for (const w of this.waiters.get(rank) ?? []) if (w.seq === a.seq && w.safePoint === a.safePoint) w.answer({ reply: { type: 'reply', ok: true, written: a.written } });
  }

  /** Rank `rank`'s report of safe point `safePoint` of checkpoint `seq` (perhaps already in), within `timeoutMs`. */
  wait(rank: number, seq: number, safePoint: number, timeoutMs: number): Promise<ArrivalAnswer> {
    const a = this.latest.get(rank);
    if (a && a.seq === seq && a.safePoint === safePoint) return Promise.resolve({ reply: { type: 'reply', ok: true, written: a.written } });
    return new Promise((resolve) => {
      const set = this.waiters.get(rank) ?? new Set<Waiter>();
      this.waiters.set(rank, set);
      const timer = setTimeout(
        () => w.answer({ error: `timed out after ${timeoutMs} ms waiting for rank ${rank} to reach safe point ${safePoint}`, code: ErrorCodes.TIMEOUT }),
        timeoutMs,
      );
      const w: Waiter = {
        seq,
        safePoint,
        answer: (x) => {
          clearTimeout(timer);
          set.delete(w);
          if (set.size === 0 && this.waiters.get(rank) === set) this.waiters.delete(rank);
          resolve(x);
        },
      };
      set.add(w);
    });
  }

  /** Rank `rank`'s connection closed: no report will come on it. */
  lost(rank: number): void {
    this.latest.delete(rank);
    for (const w of [...(this.waiters.get(rank) ?? [])]) {
      w.answer({ error: `rank ${rank} lost its connection to the coordinator`, code: ErrorCodes.OOB_UNREACHABLE });
    }
  }

  close(): void {
    for (const rank of [...this.waiters.keys()]) this.lost(rank);
  }
}
