// The `ckpt` executable: finds the command in the tables (spec/), answers --help,
// `ckpt help` and `ckpt completion` from them, and loads a command's implementation
// only to run it. Every failure ends as one line; usage errors exit 2.
import { CkptError, ErrorCodes, errnoCode, UsageError } from '../errors.js';
import { envFlag } from '../config.js';
import { holdInspectorSignal } from '../util/signals.js';
import { guardInspector } from '../util/inspector.js';
import { findSpec, specs } from './spec/index.js';
import { commandHelp, resolve, topHelp, wantsHelp } from './help.js';
import { nearest } from './suggest.js';
import { parse } from './parse.js';
import { formatError } from './output.js';
import { reportFailure, wantsJson } from './json.js';

/** Other tools' words for our commands. */
const COMMAND_HABITS: Record<string, string> = {
  dump: 'checkpoint',
  restore: 'restart',
  launch: 'run',
  ls: 'snapshots ls',
  list: 'ps',
  stop: 'checkpoint JOB --stop',
  cont: 'resume',
  gc: 'snapshots gc',
};

function unknown(kind: string, word: string, known: readonly string[], habits: Record<string, string> = {}): UsageError {
  const near = habits[word] ?? nearest(word, known);
  return new UsageError(`unknown ${kind} '${word}'`, { hint: near ? `did you mean '${near}'?` : `one of ${known.join(', ')}` });
}

/** `ckpt help [CMD [SUB]]`. */
function help(argv: string[]): string {
  if (wantsHelp(findSpec('help')!, argv)) return commandHelp(findSpec('help')!);
  const words = parse(argv, findSpec('help')!).positionals;
  if (words.length === 0) return topHelp();
  const spec = findSpec(words[0]!);
  if (!spec) throw unknown('command', words[0]!, specs.map((s) => s.name), COMMAND_HABITS);
  if (words.length === 1) return commandHelp(spec);
  const sub = spec.subcommands?.find((s) => s.name === words[1]);
  if (!sub || words.length > 2) throw unknown('subcommand', words[1]!, spec.subcommands?.map((s) => s.name) ?? []);
  return commandHelp(sub, spec);
}

const isUsage = (err: unknown) => err instanceof CkptError && err.code === ErrorCodes.USAGE;

/** Where main writes: the process's streams (tests give their own). */
export interface Io {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/**
 * A reader that stopped reading (`ckpt doctor | head -1`) is not an error of ours:
 * the rest of the output goes nowhere and the command ends as it would have, without
 * the stack trace of an unhandled EPIPE.
 */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      stream.destroy();
    });
  }
}

export async function main(argv: string[], io: Io = process): Promise<number> {
  holdInspectorSignal();
  if (io === process) {
    quietOnClosedPipe();
    // A debugger port Node opened on a SIGUSR1 during its start-up is closed once the
    // command has run a second (`ckpt run` for hours): a short command does not pay
    // the milliseconds of loading node:inspector.
    setTimeout(() => void guardInspector((line) => io.stderr.write(`ckpt: ${line}\n`)), 1000).unref();
  }
  const [name, ...rest] = argv;
  const json = wantsJson(rest);
  let debug = false;
  // Who speaks in a usage error: `ckpt checkpoint: …`, `ckpt snapshots ls: …`.
  let where = 'ckpt';
  try {
    debug = envFlag('CKPT_DEBUG');
    if (name === undefined) {
      io.stderr.write(`${topHelp()}\n`);
      return 2;
    }
    if (name === '--help' || name === '-h') {
      io.stdout.write(`${topHelp()}\n`);
      return 0;
    }
    if (name === '--version' || name === '-V') {
      const { version } = await import('../version.js');
      io.stdout.write(`ckpt ${version}\n`);
      return 0;
    }
    const spec = findSpec(name);
    if (!spec) throw unknown('command', name, specs.map((s) => s.name), COMMAND_HABITS);
    where = `ckpt ${name}`;
    if (name === 'help') {
      io.stdout.write(`${help(rest)}\n`);
      return 0;
    }
    const target = resolve(spec, rest);
    if (target.parent) where = `ckpt ${name} ${target.spec.name}`;
    if (wantsHelp(target.spec, target.rest)) {
      io.stdout.write(`${commandHelp(target.spec, target.parent)}\n`);
      return 0;
    }
    if (spec.subcommands && !target.parent) {
      const subs = spec.subcommands.map((s) => s.name);
      if (target.sub !== undefined) throw unknown('subcommand', target.sub, subs);
      throw new UsageError(`say which: ${subs.join(', ')}`, { hint: `see 'ckpt ${name} --help'` });
    }
    if (name === 'completion') return await completion(target.rest, io);
    const { loaders } = await import('./commands/index.js');
    const command = await loaders[name]!();
    return await command.run(target.rest, target.parent ? target.spec.name : undefined);
  } catch (caught) {
    const err = tooLong(caught);
    const line = formatError(err).replace(/^ckpt: /, isUsage(err) ? `${where}: ` : 'ckpt: ');
    reportFailure(err, json, line, io);
    if (debug && err instanceof Error) io.stderr.write(`${err.stack}
`);
    return isUsage(err) ? 2 : 1;
  }
}

async function completion(argv: string[], io: Io): Promise<number> {
  const { positionals } = parse(argv, findSpec('completion')!);
  const [shell, ...extra] = positionals;
  if (shell === undefined || extra.length) throw new UsageError(shell === undefined ? 'say which shell: bash or zsh' : `unexpected argument '${extra[0]}'`);
  const { bashCompletion, zshCompletion } = await import('./completion.js');
  if (shell === 'bash') io.stdout.write(bashCompletion());
  else if (shell === 'zsh') io.stdout.write(zshCompletion());
  else throw new UsageError(`no completion for '${shell}'`, { hint: 'bash or zsh' });
  return 0;
}

/** A path over the system's limits, anywhere below a command: the user's mistake, said as such (not an internal error naming a /proc path). */
function tooLong(err: unknown): unknown {
  if (errnoCode(err) !== 'ENAMETOOLONG') return err;
  return new UsageError('a path given is too long (over 4096 bytes, or a name in it over 255)', { cause: err });
}
