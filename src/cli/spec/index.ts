// Every command's table, in the order help lists them, and the exit statuses.
// Imports no command: --help, completion and --version load only these tables.
import { checkpointSpec } from './checkpoint.js';
import { completionSpec, doctorSpec, helpSpec, killSpec, psSpec, resumeSpec, setupSpec } from './others.js';
import { restartSpec } from './restart.js';
import { runSpec } from './run.js';
import { snapshotsSpec } from './snapshots.js';
import type { CommandSpec } from './types.js';

export type { CommandSpec, OptionSpec, OptionTable, Values, Completion } from './types.js';

export const specs: readonly CommandSpec[] = [
  checkpointSpec,
  restartSpec,
  resumeSpec,
  snapshotsSpec,
  runSpec,
  psSpec,
  killSpec,
  doctorSpec,
  setupSpec,
  completionSpec,
  helpSpec,
] as readonly CommandSpec[];

export function findSpec(name: string): CommandSpec | undefined {
  return specs.find((s) => s.name === name);
}

/** The exit statuses of every command (README and the man page say the same). */
export const EXIT_STATUSES: readonly { status: string; meaning: string }[] = [
  { status: '0', meaning: 'done' },
  { status: '1', meaning: 'the operation failed (the error line says why, with its ECKPT_* code)' },
  { status: '2', meaning: 'usage: an unknown option, a missing or bad argument (nothing was done)' },
  { status: '85', meaning: 'the job was checkpointed and then stopped or ended by the preemption path (--checkpoint-signal)' },
  { status: '128+N', meaning: 'the process or job was killed by signal N (e.g. 137: SIGKILL), as a shell reports it' },
];
