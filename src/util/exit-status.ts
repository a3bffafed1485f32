// A process's end as a shell reports it: its exit code, or 128+N when signal N ended it.
import { constants as osConstants } from 'node:os';

/** 128+N for signal N (the status a shell reports for a process that signal ended). */
export function signalStatus(signal: NodeJS.Signals | string): number {
  return 128 + ((osConstants.signals as Record<string, number>)[signal] ?? 0);
}

export function shellStatus(exit: { code: number | null; signal: NodeJS.Signals | null }): number {
  return exit.signal ? signalStatus(exit.signal) : (exit.code ?? 1);
}

/**
 * The status of a job that ended at its own checkpoint ("checkpointed and stopped,
 * resume me"): what `ckpt run` and `ckpt restart` exit with then, so that a batch
 * script can tell it from finishing (0) and from failing or being killed; and what
 * a rank told to end at the snapshot exits with.
 */
export const EXIT_CHECKPOINTED = 85;
