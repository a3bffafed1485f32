// The `ckpt` executable: finds the command and runs it; every failure ends as one line.
import { commands } from './commands/index.js';
import { UsageError } from '../errors.js';
import { envFlag } from '../config.js';
import { holdInspectorSignal } from '../util/signals.js';
import { reportFailure, wantsJson } from './json.js';

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: ckpt COMMAND [OPTIONS]',
    '',
    'Checkpoint/restart for Linux processes and parallel jobs.',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'ckpt COMMAND --help' for a command's options.",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  holdInspectorSignal();
  const [name, ...rest] = argv;
  const json = wantsJson(rest);
  let debug = false;
  try {
    debug = envFlag('CKPT_DEBUG');
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(`${help()}\n`);
      return name === undefined ? 2 : 0;
    }
    if (name === '--version' || name === '-V') {
      const { version } = await import('../version.js');
      process.stdout.write(`ckpt ${version}\n`);
      return 0;
    }
    const command = commands.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command '${name}'`, { hint: "run 'ckpt --help' for the list" });
    if (rest[0] === '--help' || rest[0] === '-h') {
      process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n`);
      return 0;
    }
    return await command.run(rest);
  } catch (err) {
    reportFailure(err, json);
    if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
