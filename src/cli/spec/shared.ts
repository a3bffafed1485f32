// Options shared by several commands: --json, where a job's ranks run (run, restart),
// and the unattended policy under a batch system (run, restart).
import type { OptionTable } from './types.js';

export const jsonOption = {
  json: { help: 'print the result as one JSON object on stdout' },
} as const satisfies OptionTable;

export const launcherOptions = {
  launcher: { arg: 'local|slurm', values: ['local', 'slurm'], default: 'slurm inside a Slurm allocation, else local', help: 'how the ranks are started' },
  nodes: { short: 'N', arg: 'NODES', int: { min: 1 }, help: 'spread the ranks over NODES nodes of the Slurm allocation (--launcher slurm)' },
  distribution: { arg: 'block|cyclic', values: ['block', 'cyclic'], default: 'block', help: 'how ranks are placed on the nodes (--launcher slurm)' },
  bind: { arg: 'IFACE|ADDR', help: 'the interface or address the job listens on for its ranks (tcp)' },
  stage: { arg: 'DIR', complete: 'dir', help: "criu: dump each rank into DIR on its own node's disk, let the job go on, then copy into the store" },
} as const satisfies OptionTable;

export const unattendedOptions = {
  'checkpoint-signal': { arg: 'SIG', complete: 'signal', help: 'on this signal (e.g. USR1 before a time limit): checkpoint the job and end it (status 85)' },
  'on-checkpoint-signal': { arg: 'stop|requeue', values: ['stop', 'requeue'], default: 'stop', help: 'after that checkpoint: stop, or requeue the Slurm job' },
  'max-restarts': { arg: 'K', int: { min: 0 }, help: 'bring the job back from its newest snapshot after a rank dies, up to K times' },
  'restart-from-scratch': { help: 'with --max-restarts: start afresh when there is no snapshot yet' },
  'env-refresh': { arg: 'NAME', multiple: true, help: 'on a restart, take this variable from the new environment, not the snapshot (repeatable)' },
} as const satisfies OptionTable;
