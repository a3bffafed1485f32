// Timeouts of pending receives without a timer per receive: a receive that is
// answered at once (the common case) then costs no setTimeout/clearTimeout pair,
// which was a visible share of a small message's cost. One timer is armed for
// the earliest deadline; when it fires, what is due expires and it re-arms.
export interface Expiring {
  /** performance.now() at which it expires; Infinity once settled or never. */
  deadline: number;
  expire: () => void;
}

export class Deadlines {
  private readonly pending = new Set<Expiring>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  /** Starts timing `e` (its deadline already set). */
  add(e: Expiring): void {
    if (!Number.isFinite(e.deadline)) return;
    this.pending.add(e);
    if (e.deadline < this.armedFor) this.arm(e.deadline);
  }

  /** `e` settled: it will not expire. */
  remove(e: Expiring): void {
    e.deadline = Infinity;
    this.pending.delete(e);
    if (this.pending.size === 0) this.disarm();
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    // The timer never keeps the process alive: the receive itself does (Comm.hold).
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - performance.now())).unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const e of [...this.pending]) {
      if (e.deadline <= now) {
        this.pending.delete(e);
        e.deadline = Infinity;
        e.expire();
      } else if (e.deadline < next) next = e.deadline;
    }
    if (next < Infinity) this.arm(next);
  }
}
