// ckpt run: start a parallel job and wait for it.
import { isJobCheckpointer, JOB_CHECKPOINTERS } from '../../crs/job-registry.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../command.js';
import { intOption, parse } from '../command.js';
import { launcherFrom } from '../launcher-options.js';
import { runSpec } from '../spec/run.js';
import { UsageError } from '../../errors.js';
import { formatError } from '../output.js';
import { launchJob, MAX_RANKS, type LaunchOptions, type OutputMode } from '../../runtime/launcher.js';
import { restartJob } from '../../runtime/restart.js';
import { newestJobSnapshot } from '../../runtime/supervise.js';
import { stateDir } from '../../util/paths.js';
import { jobNameProblem } from '../../util/job-name.js';
import { listSnapshots, type Snapshot } from '../../store/store.js';
import { runUnattended, unattendedFrom, type Unattended } from '../unattended.js';
import { launchIsolated } from '../../isolate/launch.js';
import { restartIsolated } from '../../isolate/restore.js';
import { newestIsolatedSnapshot, superviseIsolated } from '../../isolate/supervise.js';
import { runAcrossNodes } from '../../isolate/nodes.js';

/** `ckpt run --isolate`: one process tree in its own namespaces; exits with its status (85: ended at its checkpoint). */
async function runIsolated(
  command: string[],
  o: { net: boolean; name?: string; verbose: boolean; resume: boolean; intervalMs?: number; keep?: number } & Unattended['supervise'],
): Promise<number> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // Recorded with the job, so that its snapshots carry it (ckpt restart resumes it).
  const periodic = o.intervalMs ? { intervalMs: o.intervalMs, ...(o.keep ? { keep: o.keep } : {}) } : undefined;
  const launch = () => launchIsolated({ command: command[0]!, args: command.slice(1), net: o.net, name: o.name, schedule: periodic });
  const relaunch = async (from: Snapshot | undefined) => (from ? (await restartIsolated(from, { schedule: periodic })).job : launch());
  // Its snapshots: the default store of its name (where `ckpt checkpoint NAME` puts them).
  const store = join(stateDir(), 'snapshots', o.name ?? '');
  if (o.resume && o.name === undefined) throw new UsageError('--resume needs the job\'s --name (where its snapshots are)');
  const from = o.resume ? newestIsolatedSnapshot(store, o.name!) : undefined;
  if (o.resume) log(resumeLine(store, from && { seq: from.seq, dir: from.dir, name: o.name! }));
  const job = await relaunch(from);
  if (o.verbose) log(`ckpt: isolated job ${job.id} started: ${command.join(' ')} (pid ${job.rootPid}${o.net ? ', own network' : ''})`);
  const exit = await superviseIsolated(job, { ...o, name: job.name, store: join(stateDir(), 'snapshots', job.name), relaunch, log });
  if (o.verbose) log(`ckpt: isolated job ${job.name} exited with status ${exit.status}`);
  return exit.status;
}

/** `ckpt run --isolate --launcher slurm -- mpirun …`: one isolated tree per node (isolate/nodes.ts). */
function runIsolatedNodes(command: string[], values: Record<string, unknown>): Promise<number> {
  for (const o of ['net', 'interval', 'keep', 'resume', 'checkpoint-signal', 'on-checkpoint-signal', 'max-restarts', 'restart-from-scratch']) {
    if (values[o] !== undefined) throw new UsageError(`--${o} does not go with --isolate --launcher slurm`);
  }
  return runAcrossNodes(command, { name: values.name as string | undefined, log: (line) => process.stderr.write(`${line}\n`) });
}

/** --interval SEC [--keep K]: periodic checkpoints, for rank and isolated jobs alike. */
function schedule(values: { interval?: string; keep?: string }, flag: (o: 'interval' | 'keep') => string): { intervalMs?: number; keep?: number } {
  const interval = intOption(values.interval, 'interval', 1);
  const keep = intOption(values.keep, 'keep', 1);
  if (keep !== undefined && interval === undefined) throw new UsageError(`${flag('keep')} goes with ${flag('interval')}`);
  return { intervalMs: interval === undefined ? undefined : interval * 1000, keep };
}

export const run: Command = {
  async run(argv) {
    const { values, command, flag } = parse(argv, runSpec);
    const badName = values.name === undefined ? undefined : jobNameProblem(values.name);
    if (badName) throw new UsageError(`${flag('name')}: the name ${badName}`);
    if (values.dir !== undefined && statSync(values.dir, { throwIfNoEntry: false })?.isDirectory() === false) throw new UsageError(`${flag('dir')}: ${values.dir} is not a directory`);
    if (values.isolate) {
      for (const o of ['np', 'oob', 'bind', 'output', 'timeout', 'join-timeout', 'dir', 'crs', 'env-refresh', 'nodes', 'distribution'] as const) {
        if (values[o] !== undefined) throw new UsageError(`${flag(o)} does not go with --isolate`);
      }
      if (command.length === 0) throw new UsageError('no command to run: ckpt run --isolate [OPTIONS] [--] CMD [ARGS…]');
      if (values.stage !== undefined) throw new UsageError('--stage goes with a job of ranks (-n N), not --isolate');
      if (values.launcher !== undefined && values.launcher !== 'local' && values.launcher !== 'slurm') throw new UsageError(`--launcher is local or slurm, not '${values.launcher}'`);
      // Only an explicit --launcher slurm: an isolated job inside an allocation stays on its node by default.
      if (values.launcher === 'slurm') return runIsolatedNodes(command, values);
      const { supervise } = unattendedFrom(values);
      const { intervalMs, keep } = schedule(values, flag);
      const flags = { net: values.net === true, name: values.name, verbose: values.verbose === true, resume: values.resume === true };
      return runIsolated(command, { ...flags, intervalMs, keep, ...supervise });
    }
    if (values.net) throw new UsageError('--net goes with --isolate');
    if (values.np === undefined) throw new UsageError('say how many ranks with -n N (or run one command with --isolate)');
    const size = intOption(values.np, 'n', 0)!;
    if (size < 1 || size > MAX_RANKS) throw new UsageError(`-n takes 1 to ${MAX_RANKS} ranks, not ${size}`);
    if (command.length === 0) throw new UsageError('no command to run: ckpt run -n N [OPTIONS] [--] CMD [ARGS…]');
    const where = launcherFrom(values);
    // Across nodes the ranks talk over TCP.
    const oob = values.oob ?? (where.launcher === 'slurm' ? 'tcp' : 'unix');
    if (oob !== 'unix' && oob !== 'tcp') throw new UsageError(`--oob is unix or tcp, not '${oob}'`);
    if (where.launcher === 'slurm' && oob !== 'tcp') throw new UsageError('--launcher slurm: ranks on other nodes talk over tcp, not unix sockets');
    const timeout = intOption(values.timeout, 'timeout', 1);
    const joinTimeout = intOption(values['join-timeout'], 'join-timeout', 1);
    const output: OutputMode = values.output ? { mode: 'files', dir: values.output } : { mode: 'prefix' };
    const { intervalMs, keep } = schedule(values, flag);
    const crs = values.crs;
    if (crs !== undefined && !isJobCheckpointer(crs)) throw new UsageError(`--crs is ${JOB_CHECKPOINTERS.join(' or ')}, not '${crs}'`);

    const unattended = unattendedFrom(values);
    const launch: LaunchOptions = {
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
      intervalMs,
      keep,
      crs,
      ...where,
    };
    const restartOptions = { ...where, bind: values.bind, output, intervalMs: launch.intervalMs, keep, joinTimeoutMs: launch.joinTimeoutMs, rankTimeoutMs: launch.rankTimeoutMs, envRefresh: unattended.envRefresh };
    // --resume: the same line starts the job the first time and resumes it after every requeue.
    if (values.resume && values.dir === undefined && values.name === undefined) throw new UsageError('--resume needs the job\'s --name or --dir (where its snapshots are)');
    const store = values.dir ?? join(stateDir(), 'snapshots', values.name ?? '');
    const from = values.resume ? newestJobSnapshot(store, values.name) : undefined;
    if (values.resume) process.stderr.write(`${resumeLine(store, from && { seq: from.seq, dir: from.dir, name: from.manifest.job.name })}\n`);
    const job = from ? await restartJob(from, restartOptions) : await launchJob(launch);
    const verbose = values.verbose === true;
    if (verbose) process.stderr.write(`ckpt: job ${job.id} started: ${size} rank${size > 1 ? 's' : ''} of ${command.join(' ')} (oob ${job.address})\n`);
    const watch = (j: typeof job) => {
      j.on('checkpoint', (s) => {
        if (verbose) process.stderr.write(`ckpt: job ${j.id} checkpointed into ${s.dir} (seq ${s.seq})\n`);
      });
      j.on('checkpoint-error', (err) => process.stderr.write(`${formatError(err)}\n`));
      j.on('rejected', (err) => {
        if (verbose) process.stderr.write(`ckpt: job ${j.id}: refused a connection: ${err.message}\n`);
      });
    };
    watch(job);
    // Signals end the job (or checkpoint it, --checkpoint-signal); a dead rank brings it back (--max-restarts).
    const status = await runUnattended(job, unattended, {
      store: job.store,
      relaunch: (snap) => (snap ? restartJob(snap, restartOptions) : launchJob(launch)),
      onRelaunch: watch,
    });
    if (verbose) process.stderr.write(`ckpt: job ${job.name} ended with status ${status}\n`);
    return status;
  },
};

/** What --resume found: one line, so a batch log shows which run this was. */
function resumeLine(store: string, from: { seq: number; dir: string; name: string } | undefined): string {
  if (from) return `ckpt: resuming job ${from.name} from snapshot ${from.seq} (${from.dir})`;
  let partial = false;
  try {
    partial = listSnapshots(store).length === 0 && existsSync(store) && readdirSync(store).some((n) => n.startsWith('.partial-'));
  } catch {
    // no store yet
  }
  return partial ? `ckpt: ${store} holds only an incomplete snapshot: starting the job afresh` : `ckpt: no snapshot in ${store} yet: starting the job`;
}
