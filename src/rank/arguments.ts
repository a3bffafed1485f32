// What a program passes the rank library, checked at the call: a mistake is one
// ECKPT_USAGE there, never a TypeError from deep inside, and never a wait that
// silently never ends (a negative or NaN timeout compared as "no deadline").
import { UsageError } from '../errors.js';
import { MAX_TIMER_MS } from '../config.js';

/** `timeoutMs` as given (undefined: the communicator's default), if it is a number of milliseconds from 0 (never) up. */
export function timeoutOf(timeoutMs: unknown, what: string): number | undefined {
  if (timeoutMs === undefined) return undefined;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMER_MS) {
    throw new UsageError(`${what}: timeoutMs is a number of milliseconds from 0 (no deadline) to ${MAX_TIMER_MS}, not ${typeof timeoutMs === 'string' ? `'${timeoutMs}'` : String(timeoutMs)}`);
  }
  return timeoutMs;
}

/** The options object of a call (null or absent: none), and its checked timeout. */
export function optionsOf<O extends { timeoutMs?: number }>(options: O | null | undefined, what: string): { options: Partial<O>; timeoutMs: number | undefined } {
  if (options === null || options === undefined) return { options: {}, timeoutMs: undefined };
  if (typeof options !== 'object') throw new UsageError(`${what}: options must be an object, not ${typeof options}`);
  return { options, timeoutMs: timeoutOf(options.timeoutMs, what) };
}
