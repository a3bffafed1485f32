// The small commands: resume, ps, kill, doctor, setup, completion, help.
import { jsonOption } from './shared.js';
import type { CommandSpec, OptionTable } from './types.js';

export const resumeSpec: CommandSpec<typeof jsonOption> = {
  name: 'resume',
  summary: 'continue a process tree or a job left stopped by a checkpoint (every process of it, not only its root)',
  usage: ['PID|JOB [--json]'],
  options: jsonOption,
  operands: [{ name: 'PID|JOB', complete: 'job' }],
};

export const psSpec: CommandSpec<typeof jsonOption> = {
  name: 'ps',
  summary: 'list the running jobs of this user',
  usage: ['[--json]'],
  options: jsonOption,
};

const killOptions = {
  signal: { short: 's', arg: 'SIG', complete: 'signal', default: 'end the job', help: 'send SIG (a name or number) to every rank instead of ending the job' },
  ...jsonOption,
} as const;
export const killSpec: CommandSpec<typeof killOptions> = {
  name: 'kill',
  summary: 'end a running job, or send its ranks a signal',
  usage: ['JOB [--signal SIG] [--json]'],
  options: killOptions,
  operands: [{ name: 'JOB', complete: 'job' }],
};

export const doctorSpec: CommandSpec<typeof jsonOption> = {
  name: 'doctor',
  summary: 'tell which checkpointers can work here, and why not',
  usage: ['[--json]'],
  options: jsonOption,
};

const setupCriuOptions = {
  prefix: { arg: 'DIR', complete: 'dir', default: 'ckpt\'s private directory', help: 'install a private CRIU under DIR (an absolute path)' },
  force: { help: 'install even if a working CRIU is already there' },
  'for-users': { arg: 'GROUP', help: 'let the members of GROUP checkpoint their own processes with it (root)' },
  ...jsonOption,
} as const;
export const setupCriuSpec: CommandSpec<typeof setupCriuOptions> = {
  name: 'criu',
  parent: 'setup',
  summary: 'make sure a CRIU that works on this kernel is there (installing a private one if needed)',
  usage: ['[--prefix DIR] [--force] [--for-users GROUP] [--json]'],
  options: setupCriuOptions,
};

export const setupSpec: CommandSpec<OptionTable> = {
  name: 'setup',
  summary: 'install the tools ckpt needs',
  usage: ['criu …'],
  options: {},
  subcommands: [setupCriuSpec],
};

export const completionSpec: CommandSpec<OptionTable> = {
  name: 'completion',
  summary: 'print the shell completion script for bash or zsh',
  usage: ['bash|zsh'],
  description: ['bash: eval "$(ckpt completion bash)" in ~/.bashrc. zsh: ckpt completion zsh > a directory of $fpath, as _ckpt.'],
  options: {},
  operands: [{ name: 'SHELL', complete: ['bash', 'zsh'] }],
};

export const helpSpec: CommandSpec<OptionTable> = {
  name: 'help',
  summary: 'show the help of a command (ckpt help snapshots ls)',
  usage: ['[COMMAND [SUBCOMMAND]]'],
  options: {},
};
