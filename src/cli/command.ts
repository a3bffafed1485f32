// The shape of one CLI command: a thin shell that parses its arguments against its
// option table (spec/), calls the library API, and prints. Each command lives in its
// own file under commands/, loaded only when it runs.
import { UsageError } from '../errors.js';

export { parse } from './parse.js';

export interface Command {
  /** argv: the words after the command (and its subcommand, given as `sub`). Returns the exit status. */
  run(argv: string[], sub?: string): Promise<number>;
}

export function intOption(value: string | undefined, name: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min) throw new UsageError(`--${name} takes a whole number ≥ ${min}, not '${value}'`);
  return Number(value);
}
