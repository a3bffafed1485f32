// The shape of one CLI command: a thin shell that parses arguments, calls the
// library API, and prints. Each command lives in its own file under commands/.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>;
import { UsageError } from '../errors.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit code. Throws CkptError for failures. */
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode, with usage errors as UsageError. */
export function parse<O extends Options>(argv: string[], options: O, usage: string): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new UsageError(`${msg}`, { hint: `usage: ${usage}`, cause: err });
  }
}

export function intOption(value: string | undefined, name: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min) throw new UsageError(`--${name} takes a whole number ≥ ${min}, not '${value}'`);
  return Number(value);
}
