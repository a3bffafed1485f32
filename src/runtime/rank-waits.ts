// Waits on one event per rank, with a timeout: a rank coming back from its CRIU
// dump (rejoin), a rank reaching its safe point (self). Each rank has at most one
// wait at a time; settling it, or its timeout, removes it.
import { CkptError, ErrorCodes } from '../errors.js';

interface Wait<T, K> {
  key: K;
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

export class RankWaits<T, K = undefined> {
  private readonly waits = new Map<number, Wait<T, K>>();

  /** Waits for `rank` (replacing its wait, if any); fails with TIMEOUT after `timeoutMs`, saying `what`. */
  wait(rank: number, key: K, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => w.reject(new CkptError(ErrorCodes.TIMEOUT, `timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      // A wait never keeps the process alive by itself (a job that has ended may still have one).
      timer.unref();
      const settle = () => {
        clearTimeout(timer);
        if (this.waits.get(rank) === w) this.waits.delete(rank);
      };
      const w: Wait<T, K> = {
        key,
        resolve: (v) => (settle(), resolve(v)),
        reject: (e) => (settle(), reject(e)),
      };
      this.waits.set(rank, w);
    });
  }

  has(rank: number): boolean {
    return this.waits.has(rank);
  }

  /** Resolves `rank`'s wait, when it has one (for `key`, when given). */
  resolve(rank: number, value: T, matches: (key: K) => boolean = () => true): void {
    const w = this.waits.get(rank);
    if (w && matches(w.key)) w.resolve(value);
  }

  reject(rank: number, err: Error): void {
    this.waits.get(rank)?.reject(err);
  }

  rejectAll(err: (rank: number) => Error): void {
    for (const [rank, w] of [...this.waits]) w.reject(err(rank));
  }
}
