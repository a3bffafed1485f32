// Ctrl-C (SIGINT) or SIGTERM while a command's operation runs: instead of dying at once
// (Node's default, which would leave a partial snapshot and possibly a frozen tree),
// the operation is aborted through an AbortSignal — it leaves what it worked on as it
// was — and the command ends with one line and 128 + the signal's number.
import { constants } from 'node:os';
import { InterruptedError } from '../errors.js';
import { reportFailure } from './json.js';

const CAUGHT = ['SIGINT', 'SIGTERM'] as const;

export interface Interrupts {
  readonly signal: AbortSignal;
  /** The signal received, once one was. */
  readonly received: NodeJS.Signals | undefined;
  /** Says `ckpt: interrupted; <what>` (stderr; also the JSON error with --json) and returns the exit status. */
  report(what: string, json: boolean): number;
  /** Node's default handling again. */
  dispose(): void;
}

/** Catches SIGINT and SIGTERM until dispose(); the first aborts `signal`, later ones wait for that abort to finish. */
export function catchInterrupts(): Interrupts {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handlers = CAUGHT.map((sig) => {
    const handler = (): void => {
      if (received) return;
      received = sig;
      controller.abort(new InterruptedError(`interrupted (${sig}); checkpoint aborted`));
    };
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    report(what, json) {
      const message = `interrupted; ${what}`;
      reportFailure(new InterruptedError(message), json, `ckpt: ${message}`);
      return 128 + (constants.signals[received ?? 'SIGINT'] ?? 2);
    },
    dispose() {
      for (const [sig, handler] of handlers) process.off(sig, handler);
    },
  };
}
