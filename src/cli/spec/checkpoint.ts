// ckpt checkpoint: a process tree (--pid) or a running job (JOB).
import { jsonOption } from './shared.js';
import type { CommandSpec } from './types.js';

export const checkpointOptions = {
  pid: { short: 'p', arg: 'PID', int: 'pid', complete: 'pid', help: 'the root of the process tree to checkpoint (from outside, with CRIU)' },
  dir: { short: 'd', arg: 'DIR', complete: 'dir', help: 'the snapshot store (required with --pid; a job: default its own store)' },
  'leave-running': { help: 'let it run on after the checkpoint (the default)' },
  stop: { help: 'leave it stopped after the checkpoint (ckpt resume continues it)' },
  kill: { help: 'end it with SIGKILL once the snapshot is committed' },
  term: { help: 'end it with SIGTERM once the snapshot is committed (a process: the stopped tree gets SIGTERM, then SIGCONT, and may handle it; a job ends at the snapshot)' },
  crs: { arg: 'NAME', complete: ['criu', 'self', 'none'], default: 'the best available (ckpt doctor)', help: 'the checkpointer' },
  interval: { arg: 'SEC', int: { min: 1, unit: 'seconds' }, help: 'with --pid: checkpoint again every SEC seconds until the process ends' },
  keep: { arg: 'K', int: { min: 1 }, help: 'with --interval: keep only the newest K snapshots' },
  ...jsonOption,
} as const;

export const checkpointSpec: CommandSpec<typeof checkpointOptions> = {
  name: 'checkpoint',
  summary: 'checkpoint a running process tree or job into a snapshot store',
  usage: ['--pid PID --dir DIR [--leave-running | --stop | --term | --kill] [--crs NAME] [--json]', '--pid PID --dir DIR --interval SEC [--keep K] [--crs NAME] [--json]', 'JOB [--dir STORE] [--leave-running | --stop | --term | --kill] [--crs criu|self] [--json]'],
  description: [
    'With --pid, CRIU dumps the tree rooted at PID from outside; the program needs no change. With JOB (an id, id prefix or name from ckpt ps), the running job is checkpointed as a whole.',
  ],
  options: checkpointOptions,
  operands: [{ name: 'JOB', complete: 'job' }],
  // CRIU's and DMTCP's spellings.
  habits: { '-t': '--pid', '--tree': '--pid', '-D': '--dir', '--images-dir': '--dir', '--ckptdir': '--dir', '-R': '--leave-running', '-s': '--stop', '-i': '--interval' },
};
