// --help and `ckpt help` from the option tables.
import { EXIT_STATUSES, specs } from './spec/index.js';
import type { CommandSpec, OptionSpec } from './spec/types.js';
import { splitCommand, takesValue } from './parse.js';

/** `-p, --pid PID` as help shows it. */
export function optionLabel(name: string, o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
}

export function optionMeaning(o: OptionSpec): string {
  const words = o.values && !o.arg?.includes('|') ? ` (${o.values.join(', ')})` : '';
  return `${o.help}${words}${o.default ? ` (default: ${o.default})` : ''}`;
}

function table(rows: [string, string][]): string[] {
  const width = Math.min(28, Math.max(...rows.map(([l]) => l.length)));
  return rows.map(([l, m]) => (l.length > width ? `  ${l}\n  ${''.padEnd(width)}  ${m}` : `  ${l.padEnd(width)}  ${m}`));
}

export function topHelp(): string {
  return [
    'usage: ckpt COMMAND [OPTIONS]',
    '',
    'Checkpoint/restart for Linux processes and parallel jobs.',
    '',
    'commands:',
    ...table(specs.map((c) => [c.name, c.summary])),
    '',
    'options: -h, --help (also after any command), -V, --version',
    '',
    'exit status:',
    ...table(EXIT_STATUSES.map((e) => [e.status, e.meaning])),
    '',
    "Run 'ckpt help COMMAND' or 'ckpt COMMAND --help' for a command's options (man ckpt: all of them).",
  ].join('\n');
}

/** The help of `ckpt NAME` or, with `parent`, of `ckpt PARENT NAME`. */
export function commandHelp(spec: CommandSpec, parent?: CommandSpec): string {
  const path = parent ? `ckpt ${parent.name} ${spec.name}` : `ckpt ${spec.name}`;
  const lines = spec.usage.map((u, i) => `${i === 0 ? 'usage: ' : '       '}${path} ${u}`);
  lines.push('', `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`);
  for (const d of spec.description ?? []) lines.push('', d);
  if (spec.subcommands) {
    lines.push('', 'subcommands:', ...table(spec.subcommands.map((s) => [s.name, s.summary])));
    lines.push('', `Run '${path} SUBCOMMAND --help' for its options.`);
  }
  const rows: [string, string][] = Object.entries(spec.options).map(([n, o]) => [optionLabel(n, o), optionMeaning(o)]);
  rows.push(['-h, --help', 'show this help']);
  lines.push('', 'options:', ...table(rows));
  return lines.join('\n');
}

/** The command (and subcommand) an argument list names, and its arguments after them. */
export function resolve(spec: CommandSpec, argv: readonly string[]): { spec: CommandSpec; parent?: CommandSpec; rest: string[]; sub?: string } {
  if (!spec.subcommands) return { spec, rest: [...argv] };
  // The subcommand is the first word that is no option nor an option's value (of any subcommand's table).
  const all: CommandSpec = { ...spec, options: Object.assign({}, ...spec.subcommands.map((s) => s.options)) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (!a.startsWith('-')) {
      const sub = spec.subcommands.find((s) => s.name === a);
      return sub ? { spec: sub, parent: spec, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] } : { spec, rest: [...argv], sub: a };
    }
    if (takesValue(a, all)) i++;
  }
  return { spec, rest: [...argv] };
}

/** -h or --help among the command's own options (not in the command of ckpt run, nor after --). */
export function wantsHelp(spec: CommandSpec, argv: readonly string[]): boolean {
  const own = spec.commandAfter ? splitCommand(argv, spec).own : argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length);
  for (let i = 0; i < own.length; i++) {
    if (own[i] === '--help' || own[i] === '-h') return true;
    if (takesValue(own[i]!, spec)) i++;
  }
  return false;
}
