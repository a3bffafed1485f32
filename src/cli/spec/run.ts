// ckpt run: a parallel job (N ranks and a coordinator), or one isolated command.
import { launcherOptions, unattendedOptions } from './shared.js';
import type { CommandSpec } from './types.js';

export const runOptions = {
  np: { short: 'n', arg: 'N', int: { min: 0 }, help: 'the number of ranks (1 to 256)' },
  oob: { arg: 'unix|tcp', values: ['unix', 'tcp'], default: 'unix; tcp with --launcher slurm', help: 'how ranks reach the coordinator and each other' },
  name: { arg: 'NAME', help: "the job's name (ckpt ps, ckpt checkpoint NAME; its default store)" },
  output: { arg: 'DIR', complete: 'dir', default: 'prefixed lines on ckpt\'s own stdout and stderr', help: "write each rank's stdout and stderr to DIR/rank-K.out and .err" },
  timeout: { arg: 'SEC', int: { min: 1, unit: 'seconds' }, default: '600', help: 'how long a rank waits for a message or a collective before failing' },
  'join-timeout': { arg: 'SEC', int: { min: 1, unit: 'seconds' }, default: '60', help: 'how long the coordinator waits for every rank to join' },
  dir: { arg: 'STORE', complete: 'dir', default: '$CKPT_STATE_DIR/snapshots/NAME', help: "the job's snapshot store" },
  interval: { arg: 'SEC', int: { min: 1, unit: 'seconds' }, help: 'checkpoint the job every SEC seconds' },
  keep: { arg: 'K', int: { min: 1 }, help: 'with --interval: keep only the newest K snapshots' },
  crs: { arg: 'criu|self', values: ['criu', 'self'], default: '$CKPT_CRS, else the best available', help: "how the ranks' state is saved" },
  resume: { help: 'start from the newest snapshot of the job (--name or --dir) if there is one: the same line after every requeue' },
  isolate: { help: 'run one command, unmodified, as pid 1 of fresh namespaces (checkpointed whole by CRIU)' },
  net: { help: 'with --isolate: a network namespace of its own (loopback only)' },
  verbose: { short: 'v', help: 'say when the job starts, checkpoints and ends' },
  ...launcherOptions,
  ...unattendedOptions,
} as const;

export const runSpec: CommandSpec<typeof runOptions> = {
  name: 'run',
  summary: 'run a parallel job (N ranks of a command with a coordinator), or one command isolated',
  usage: [
    '-n N [--oob unix|tcp] [--name NAME] [--output DIR] [--dir STORE] [--interval SEC [--keep K]] [--crs criu|self] [--resume] [-v] [--] CMD [ARGS…]',
    '--isolate [--net] [--name NAME] [--interval SEC [--keep K]] [--resume] [--checkpoint-signal SIG] [--max-restarts K] [-v] [--] CMD [ARGS…]',
    '--isolate --launcher slurm [--name NAME] [--] mpirun [ARGS…]    (inside an allocation: one isolated tree per node)',
  ],
  description: ["Options end at '--' or at the first word that is not an option: the command. ckpt exits with the job's status."],
  options: runOptions,
  operands: [{ name: 'CMD', complete: 'command' }],
  aliases: { '-np': '--np' },
  habits: { '-i': '--interval', '--ckptdir': '--dir', '-D': "did you mean '--dir STORE' (snapshots) or '--output DIR' (rank output)?", '--hostfile': '--launcher slurm -N NODES', '-H': '--launcher slurm -N NODES' },
  commandAfter: true,
};
