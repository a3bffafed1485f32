// ckpt restart: a process, a job or an isolated job back from a snapshot.
import { jsonOption, launcherOptions, unattendedOptions } from './shared.js';
import type { CommandSpec } from './types.js';

export const restartOptions = {
  seq: { arg: 'N', int: { min: 1 }, default: 'the newest', help: 'restart snapshot N of the store' },
  detach: { help: 'a process: return once it runs, do not wait for it' },
  lazy: {
    help: "a process (criu): run it before its memory is read; CRIU's lazy-pages daemon copies pages in on first touch. Do not kill that daemon before it is done (it exits by itself): the pages not yet copied would read as zeros",
  },
  log: { arg: 'FILE', complete: 'file', help: "a process: append its stdout and stderr to FILE (with --detach: CRIU's log)" },
  stdout: { arg: 'FILE', complete: 'file', help: 'a process: append its stdout to FILE' },
  stderr: { arg: 'FILE', complete: 'file', help: 'a process: append its stderr to FILE' },
  'no-verify': { help: "skip checking the snapshot's checksums before restoring" },
  'trust-owner': { help: "restore a snapshot that another user owns (root)" },
  interval: { arg: 'SEC', int: { min: 0, unit: 'seconds' }, default: 'as recorded', help: 'a job (ranks or isolated): checkpoint every SEC seconds (0: never)' },
  keep: { arg: 'K', int: { min: 1 }, default: 'as recorded', help: 'a job (ranks or isolated): keep only the newest K snapshots' },
  ...launcherOptions,
  ...unattendedOptions,
  ...jsonOption,
} as const;

export const restartSpec: CommandSpec<typeof restartOptions> = {
  name: 'restart',
  summary: 'restart a process or a job from a snapshot (the newest in a store, or --seq N)',
  usage: [
    'SNAPSHOT [--seq N] [--detach] [--lazy] [--log FILE | --stdout FILE --stderr FILE] [--no-verify] [--trust-owner] [--json]',
    'SNAPSHOT [--seq N] [--interval SEC] [--keep K] [--launcher local|slurm] [-N NODES] [--bind IFACE|ADDR] [--checkpoint-signal SIG] [--max-restarts K] [--json]',
  ],
  description: [
    'SNAPSHOT is a store (its newest snapshot, or --seq N) or one snapshot directory. In the foreground ckpt waits for what it restarted and exits with its status.',
    "--lazy (post-copy) brings a big process back at once: its memory is copied in by CRIU's lazy-pages daemon, a page on its first touch and the rest in the background, and the daemon exits once every page is in or the process is gone. Until then the process depends on it: if the daemon dies, the kernel drops its hold on the memory and every page not yet copied reads as zeros (the process crashes, or goes on with wrong data). In the foreground ckpt then kills the process and says so; detached, nothing watches (the daemon's pid is in --json). The checksums still match before any of its code runs. Only for a process snapshot made by criu (not for jobs, isolated jobs, self or none snapshots).",
  ],
  options: restartOptions,
  operands: [{ name: 'SNAPSHOT', complete: 'dir' }],
  habits: { '-D': 'the snapshot is named without an option: ckpt restart SNAPSHOT', '--images-dir': 'the snapshot is named without an option: ckpt restart SNAPSHOT', '-d': '--detach' },
};
