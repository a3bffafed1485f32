// The schedule of periodic checkpoints (`--interval S`), one for every kind: rank
// jobs, isolated jobs, processes. A tick that comes while the previous one is still
// running is skipped, never queued: checkpoints never overlap or pile up behind a
// slow one.

/** Calls `tick` every `intervalMs` (the timer does not keep the process alive); returns its stop. */
export function everyInterval(intervalMs: number, tick: () => void): () => void {
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export interface Periodic {
  /** No tick after this one (the one running, if any, goes on: see `idle`). */
  stop(): void;
  /** Resolves once no tick is running (at once when none is). */
  idle(): Promise<void>;
  /** Whether a tick is running now. */
  readonly busy: boolean;
}

/**
 * Runs `tick` every `intervalMs`, skipping a tick while the previous one runs. A
 * rejected tick is the caller's to report (`tick` should catch); it never stops the
 * schedule.
 */
export function periodic(intervalMs: number, tick: () => Promise<unknown>): Periodic {
  let running: Promise<void> | undefined;
  const stopTimer = everyInterval(intervalMs, () => {
    if (running) return;
    running = tick().then(
      () => {},
      () => {},
    );
    void running.finally(() => (running = undefined));
  });
  return {
    stop: stopTimer,
    idle: () => running ?? Promise.resolve(),
    get busy() {
      return running !== undefined;
    },
  };
}
