// ckpt run: start a parallel job and wait for it.
import type { Command } from '../command.js';
import { intOption, parse } from '../command.js';
import { UsageError } from '../../errors.js';
import { formatError } from '../output.js';
import { endJobOnSignals, launchJob, MAX_RANKS, type OutputMode } from '../../runtime/launcher.js';
import { launchIsolated } from '../../isolate/launch.js';

/** `ckpt run --isolate`: one process tree in its own namespaces; exits with its status. */
async function runIsolated(command: string[], o: { net: boolean; name?: string; verbose: boolean }): Promise<number> {
  const job = await launchIsolated({ command: command[0]!, args: command.slice(1), net: o.net, name: o.name });
  if (o.verbose) {
    process.stderr.write(`ckpt: isolated job ${job.id} started: ${command.join(' ')} (pid ${job.rootPid}${o.net ? ', own network' : ''})\n`);
  }
  // Ctrl-C (or ckpt kill) ends the job; a second one kills its namespace at once.
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts === 1) void job.end();
    else job.kill();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    const exit = await job.wait();
    if (o.verbose) process.stderr.write(`ckpt: isolated job ${job.id} exited with status ${exit.status}\n`);
    return exit.status;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

const usage =
  'ckpt run -n N [--oob unix|tcp] [--bind ADDR] [--name NAME] [--output DIR] [--timeout SEC] [--dir STORE] [--interval SEC [--keep K]] [--crs criu|self] [-v] -- CMD [ARGS…]\n' +
  '       ckpt run --isolate [--net] [--name NAME] [-v] -- CMD [ARGS…]';

const options = {
  np: { type: 'string', short: 'n' },
  oob: { type: 'string' },
  bind: { type: 'string' },
  name: { type: 'string' },
  output: { type: 'string' },
  timeout: { type: 'string' },
  'join-timeout': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  dir: { type: 'string' },
  interval: { type: 'string' },
  keep: { type: 'string' },
  crs: { type: 'string' },
  isolate: { type: 'boolean' },
  net: { type: 'boolean' },
} as const;

/** Options end at `--` or at the first word that is not an option (the command). */
function split(argv: string[]): { own: string[]; command: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { own: argv.slice(0, i), command: argv.slice(i + 1) };
    if (!a.startsWith('-')) return { own: argv.slice(0, i), command: argv.slice(i) };
    const name = a.startsWith('--') ? a.slice(2) : a.slice(1);
    const spec = Object.entries(options).find(([long, o]) => long === name || ('short' in o && o.short === name))?.[1];
    if (spec?.type === 'string' && !a.includes('=')) i++; // its value
  }
  return { own: argv, command: [] };
}

export const run: Command = {
  name: 'run',
  summary: 'Run a parallel job: N ranks of a command with a coordinator',
  usage,
  async run(argv) {
    const { own, command } = split(argv);
    const { values } = parse(own, options, usage);
    if (values.isolate) {
      for (const o of ['np', 'oob', 'bind', 'output', 'timeout', 'join-timeout', 'dir', 'interval', 'keep', 'crs'] as const) {
        if (values[o] !== undefined) throw new UsageError(`--${o === 'np' ? 'n' : o} does not go with --isolate`, { hint: `usage: ${usage}` });
      }
      if (command.length === 0) throw new UsageError('no command to run', { hint: `usage: ${usage}` });
      return runIsolated(command, { net: values.net === true, name: values.name, verbose: values.verbose === true });
    }
    if (values.net) throw new UsageError('--net goes with --isolate', { hint: `usage: ${usage}` });
    if (values.np === undefined) throw new UsageError('say how many ranks with -n N', { hint: `usage: ${usage}` });
    const size = intOption(values.np, 'np', 0)!;
    if (size < 1 || size > MAX_RANKS) throw new UsageError(`-n takes 1 to ${MAX_RANKS} ranks, not ${size}`);
    if (command.length === 0) throw new UsageError('no command to run', { hint: `usage: ${usage}` });
    const oob = values.oob ?? 'unix';
    if (oob !== 'unix' && oob !== 'tcp') throw new UsageError(`--oob is unix or tcp, not '${oob}'`);
    const timeout = intOption(values.timeout, 'timeout', 1);
    const joinTimeout = intOption(values['join-timeout'], 'join-timeout', 1);
    const output: OutputMode = values.output ? { mode: 'files', dir: values.output } : { mode: 'prefix' };
    const interval = intOption(values.interval, 'interval', 1);
    const keep = intOption(values.keep, 'keep', 1);
    if (keep !== undefined && interval === undefined) throw new UsageError('--keep goes with --interval');
    const crs = values.crs;
    if (crs !== undefined && crs !== 'criu' && crs !== 'self') throw new UsageError(`--crs is criu or self, not '${crs}'`);

    const job = await launchJob({
      command: command[0]!,
      args: command.slice(1),
      size,
      oob,
      bind: values.bind,
      name: values.name,
      output,
      rankTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
      joinTimeoutMs: joinTimeout === undefined ? undefined : joinTimeout * 1000,
      store: values.dir,
      intervalMs: interval === undefined ? undefined : interval * 1000,
      keep,
      crs,
    });
    const verbose = values.verbose === true;
    if (verbose) process.stderr.write(`ckpt: job ${job.id} started: ${size} rank${size > 1 ? 's' : ''} of ${command.join(' ')} (oob ${job.address})\n`);

    // Ctrl-C ends the whole job; a second one stops waiting for the grace period.
    const uninstall = endJobOnSignals(job);
    job.on('checkpoint', (s) => {
      if (verbose) process.stderr.write(`ckpt: job ${job.id} checkpointed into ${s.dir} (seq ${s.seq})\n`);
    });
    job.on('checkpoint-error', (err) => process.stderr.write(`${formatError(err)}\n`));
    job.on('rejected', (err) => {
      if (verbose) process.stderr.write(`ckpt: job ${job.id}: refused a connection: ${err.message}\n`);
    });
    try {
      const result = await job.wait();
      if (result.error) process.stderr.write(`${formatError(result.error)}\n`);
      else if (verbose) process.stderr.write(`ckpt: job ${job.id} finished\n`);
      return result.status;
    } finally {
      uninstall();
    }
  },
};
