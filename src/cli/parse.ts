// Parses a command line against the command's option table with node:util parseArgs
// (its tokens; no dependency), and says every mistake in one line, naming the option
// as it was written: unknown options with "did you mean", a missing value, a value
// that is not a number or not one of the accepted words.
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { MAX_TIMER_MS } from '../config.js';
import type { CommandSpec, OptionSpec, OptionTable, Values } from './spec/types.js';
import { suggestOption } from './suggest.js';

export interface Parsed<O extends OptionTable> {
  values: Values<O>;
  positionals: string[];
  /** The command to run (a spec with commandAfter): everything from its first word. */
  command: string[];
  /** How the user wrote an option (`-n`), else its long form. */
  flag(name: keyof O & string): string;
}

/** Where the options end for a command that runs another (`ckpt run … CMD ARGS`); aliases applied. */
export function splitCommand(argv: readonly string[], spec: CommandSpec): { own: string[]; command: string[] } {
  const own: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = spec.aliases?.[argv[i]!] ?? argv[i]!;
    if (a === '--') return { own, command: argv.slice(i + 1) };
    if (!a.startsWith('-') || a === '-') return { own, command: argv.slice(i) };
    own.push(a);
    if (takesValue(a, spec) && i + 1 < argv.length) own.push(argv[++i]!);
  }
  return { own, command: [] };
}

/** `--dir` or `-d` written without `=VALUE`: the next word is its value. */
export function takesValue(word: string, spec: CommandSpec): boolean {
  if (word.includes('=')) return false;
  const long = word.startsWith('--') ? word.slice(2) : undefined;
  const o = long !== undefined ? spec.options[long] : Object.values(spec.options).find((x) => x.short !== undefined && `-${x.short}` === word);
  return o?.arg !== undefined;
}

export function parse<O extends OptionTable>(argv: readonly string[], spec: CommandSpec<O>): Parsed<O> {
  const { own, command } = spec.commandAfter ? splitCommand(argv, spec) : { own: [...argv], command: [] };
  const config = Object.fromEntries(
    Object.entries(spec.options).map(([name, o]) => [name, { type: o.arg ? 'string' : 'boolean', ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
  ) as Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  const { tokens } = parseArgs({ args: own, options: config, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | boolean | string[]> = {};
  const written: Record<string, string> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const o: OptionSpec | undefined = spec.options[t.name];
    if (!o) throw new UsageError(`unknown option '${t.rawName}'`, { hint: suggestOption(t.rawName, spec) ?? `see 'ckpt ${spec.parent ? `${spec.parent} ` : ''}${spec.name} --help'` });
    written[t.name] = t.rawName;
    if (!o.arg) {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value (given '${t.value}')`);
      values[t.name] = true;
      continue;
    }
    // parseArgs takes the next word whatever it is: an option there means the value is missing.
    const missing = t.value === undefined || (!t.inlineValue && /^--?[A-Za-z]/.test(t.value));
    if (missing) throw new UsageError(`${t.rawName} needs a value: ${t.rawName} ${o.arg}`);
    const value = t.value!;
    check(t.rawName, value, o);
    if (o.multiple) values[t.name] = [...((values[t.name] as string[] | undefined) ?? []), value];
    else values[t.name] = value;
  }
  const flag = (name: string) => written[name] ?? `--${name}`;
  return { values: values as Values<O>, positionals, command, flag };
}

/** The longest a Node timer can wait, in whole seconds: a longer one fires at once, and a schedule would checkpoint without pause. */
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);
/** The largest pid Linux gives (PID_MAX_LIMIT on 64-bit). */
const MAX_PID = 4_194_304;

function check(raw: string, value: string, o: OptionSpec): void {
  if (o.int === 'pid') {
    if (!/^\d+$/.test(value)) throw new UsageError(`${raw} takes a process id (a whole number), not '${value}'`);
    if (Number(value) > MAX_PID) throw new UsageError(`${raw} takes a process id (at most ${MAX_PID}), not '${value}'`);
  } else if (o.int) {
    const unit = o.int.unit ? ` of ${o.int.unit}` : '';
    if (!/^\d+$/.test(value) || Number(value) < o.int.min) throw new UsageError(`${raw} takes a whole number${unit} ≥ ${o.int.min}, not '${value}'`);
    const max = o.int.max ?? (o.int.unit === 'seconds' ? MAX_TIMER_SECONDS : Number.MAX_SAFE_INTEGER);
    if (Number(value) > max) throw new UsageError(`${raw} takes at most ${max}${o.int.unit ? ` ${o.int.unit}` : ""}${o.int.unit === "seconds" ? " (24 days)" : ""}, not '${value}'`);
  }
  if (o.values && !o.values.includes(value)) {
    const list = o.values.length === 2 ? o.values.join(' or ') : `one of ${o.values.join(', ')}`;
    throw new UsageError(`${raw} is ${list}, not '${value}'`);
  }
}
