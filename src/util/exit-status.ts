// A process's end as a shell reports it: its exit code, or 128+N when signal N ended it.
import { constants as osConstants } from 'node:os';

export function shellStatus(exit: { code: number | null; signal: NodeJS.Signals | null }): number {
  return exit.signal ? 128 + (osConstants.signals[exit.signal] ?? 0) : (exit.code ?? 1);
}
