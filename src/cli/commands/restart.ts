// `ckpt restart SNAPSHOT`: bring a process back; in the foreground, wait for it
// and exit with its status.
import { statSync } from 'node:fs';
import { signalStatus } from '../../util/exit-status.js';
import { parse, intOption, type Command } from '../command.js';
import { UsageError } from '../../errors.js';
import { restartSnapshot } from '../../process/restart.js';
import { restartJob } from '../../runtime/restart.js';
import { launcherFrom } from '../launcher-options.js';
import { runUnattended, unattendedFrom, type Unattended } from '../unattended.js';
import { restartSpec } from '../spec/restart.js';
import { openSnapshot, type JobSnapshot, type Snapshot } from '../../store/store.js';
import { isIsolatedSnapshot, restartIsolated } from '../../isolate/restore.js';
import { superviseIsolated } from '../../isolate/supervise.js';
import type { IsolatedSchedule } from '../../store/manifest.js';
import { restartAcrossNodes } from '../../isolate/nodes-restart.js';
import { isNodesStore } from '../../isolate/nodes-store.js';
import { signalPid } from '../../util/signals.js';
import { endProgress, formatError, println, progress } from '../output.js';
import { printResult } from '../json.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/**
 * An isolated job back in fresh namespaces, supervised as `ckpt run --isolate` does:
 * its recorded --interval/--keep go on (unless given here), signals end it, and
 * --checkpoint-signal / --max-restarts work as for a rank job. Its snapshots go to the
 * store it came from.
 */
async function restartIsolatedJob(snapshot: Snapshot, o: { verify: boolean; json: boolean; schedule?: IsolatedSchedule; supervise: Unattended['supervise'] }): Promise<number> {
  let restarted;
  try {
    restarted = await restartIsolated(snapshot, { verify: o.verify, onProgress: progress(o.json), schedule: o.schedule });
  } finally {
    endProgress(o.json);
  }
  const { job } = restarted;
  if (o.json) printResult('restart', { kind: 'isolated', detached: false, lazy: false, pid: job.rootPid, ...restoredFrom(snapshot), job: job.id, name: job.name });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const exit = await superviseIsolated(job, {
    ...o.supervise,
    ...(o.schedule ?? {}),
    name: job.name,
    store: snapshot.store,
    relaunch: async (from) => (await restartIsolated(from!, { verify: o.verify, schedule: o.schedule })).job,
    log,
  });
  return exit.status;
}

/** The schedule a restarted isolated job keeps: the one given here (--interval 0: none), else the recorded one. */
function isolatedSchedule(recorded: IsolatedSchedule | undefined, interval: number | undefined, keep: number | undefined): IsolatedSchedule | undefined {
  if (interval === 0) return undefined;
  if (interval !== undefined) return { intervalMs: interval * 1000, ...(keep !== undefined ? { keep } : {}) };
  if (!recorded) {
    if (keep !== undefined) throw new UsageError('--keep goes with --interval (this snapshot records no periodic checkpoints)');
    return undefined;
  }
  return { intervalMs: recorded.intervalMs, ...((keep ?? recorded.keep) !== undefined ? { keep: keep ?? recorded.keep } : {}) };
}

function restartNodes(store: string, values: Record<string, unknown>): Promise<number> {
  for (const o of ['seq', 'detach', 'lazy', 'json', 'log', 'stdout', 'stderr', 'launcher', 'nodes', 'distribution', 'interval', 'keep', 'checkpoint-signal', 'on-checkpoint-signal', 'max-restarts']) {
    if (values[o] !== undefined) throw new UsageError(`--${o} does not go with the store of a job across nodes`);
  }
  return restartAcrossNodes(store, { verify: values['no-verify'] !== true, log: (line) => process.stderr.write(`${line}\n`) });
}

/** The --json facts of the snapshot a restart came from. */
function restoredFrom(snapshot: Snapshot) {
  const { name, version } = snapshot.manifest.crs;
  return { snapshot: snapshot.dir, seq: snapshot.seq, crs: { name, version } };
}

export const restartCommand: Command = {
  async run(argv) {
    const { values, positionals } = parse(argv, restartSpec);
    const unattended = unattendedFrom(values);
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `name one snapshot, not ${positionals.length}` : 'name the snapshot: a store or a snapshot directory');
    const outputs = { log: values.log, stdout: values.stdout, stderr: values.stderr };
    for (const [flag, file] of Object.entries(outputs)) {
      if (file === '') throw new UsageError(`--${flag} takes a file name`);
      if (file !== undefined && statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--${flag}: ${file} is a directory, not a file`);
    }
    if (values.log !== undefined && (values.stdout !== undefined || values.stderr !== undefined)) {
      throw new UsageError(`--log takes both outputs: it goes without ${values.stdout !== undefined ? '--stdout' : '--stderr'}`);
    }
    const json = values.json === true;
    // A job across nodes (ckpt run --isolate --launcher slurm): each node's part on its node.
    if (isNodesStore(positionals[0]!)) return restartNodes(positionals[0]!, values);
    // A snapshot of an isolated job comes back as a job in fresh namespaces.
    const trustOwner = values['trust-owner'] === true;
    const opened = openSnapshot(positionals[0]!, { seq: intOption(values.seq, 'seq', 1), trustOwner });
    // A job resumes its recorded --interval/--keep unless given here (--interval 0: no periodic checkpoints).
    const interval = intOption(values.interval, 'interval', 0);
    const keep = intOption(values.keep, 'keep', 1);
    const isolated = isIsolatedSnapshot(opened.manifest);
    if ((interval !== undefined || keep !== undefined) && opened.manifest.kind !== 'job' && !isolated) {
      throw new UsageError('--interval and --keep go with the snapshot of a job');
    }
    const placed = values.launcher !== undefined || values.nodes !== undefined || values.distribution !== undefined || values.bind !== undefined || values.stage !== undefined;
    if (placed && opened.manifest.kind !== 'job') throw new UsageError('--launcher, -N, --distribution, --bind and --stage go with the snapshot of a job');
    // A job's ranks are placed anew: on this host, or across the nodes of this Slurm allocation.
    const where = opened.manifest.kind === 'job' ? { ...launcherFrom(values), ...(values.bind !== undefined ? { bind: values.bind } : {}) } : {};
    const supervised = Object.values(unattended.supervise).some((v) => v !== undefined && v !== false);
    if (supervised && opened.manifest.kind !== 'job' && !isolated) {
      throw new UsageError('--checkpoint-signal, --max-restarts and --restart-from-scratch go with the snapshot of a job');
    }
    if (isolated && unattended.supervise.restartFromScratch) {
      throw new UsageError('--restart-from-scratch does not go with the snapshot of an isolated job (its command is started again by ckpt run --isolate --resume)');
    }
    const redirected = values.stdout !== undefined || values.stderr !== undefined || (values.log !== undefined && !values.detach);
    if (redirected && (opened.manifest.kind !== 'process' || opened.manifest.crs.name !== 'criu' || isIsolatedSnapshot(opened.manifest))) {
      throw new UsageError('--stdout, --stderr and --log (without --detach) go with the snapshot of a process made by criu');
    }
    if (values.lazy && (opened.manifest.kind !== 'process' || isolated)) {
      throw new UsageError(`--lazy: ${isolated ? 'an isolated job' : 'a job of ranks'} cannot be restored lazily; restart without --lazy`);
    }
    if (isolated && opened.manifest.kind === 'process') {
      if (values.detach) throw new UsageError('--detach is not supported for a snapshot of an isolated job');
      const schedule = isolatedSchedule(opened.manifest.process.isolation?.schedule, interval, keep);
      return restartIsolatedJob(opened, { verify: values['no-verify'] !== true, json, schedule, supervise: unattended.supervise });
    }
    // While the ranks or the process are being restored, a signal is held, not fatal: a job
    // ends once it stands; a process (running as soon as CRIU releases it, before the
    // restore call returns) gets it forwarded. A detached restart keeps Node's default.
    // One listener from here to the end (removing and adding listeners opens a gap in
    // which a signal was seen to be lost): it holds the signal until `forwardTo` is set.
    let early: NodeJS.Signals | undefined;
    let forwardTo: ((sig: NodeJS.Signals) => void) | undefined;
    const catchEarly = (sig: NodeJS.Signals) => (forwardTo ? forwardTo(sig) : void (early ??= sig));
    if (opened.manifest.kind === 'job' || !values.detach) for (const sig of FORWARDED) process.on(sig, catchEarly);
    let restarted;
    try {
      // Opened and checked above: its files are not walked twice.
      restarted = await restartSnapshot(opened, {
        detach: values.detach === true,
        lazy: values.lazy === true,
        logFile: values.log,
        stdoutFile: values.stdout,
        stderrFile: values.stderr,
        verify: values['no-verify'] !== true,
        trustOwner,
        envRefresh: unattended.envRefresh,
        onProgress: progress(json),
        job: { ...where, intervalMs: interval === undefined ? undefined : interval * 1000, keep, envRefresh: unattended.envRefresh },
      });
    } finally {
      // A restarted job or process keeps it until its own handling is in place.
      if (!restarted || values.detach) for (const sig of FORWARDED) process.off(sig, catchEarly);
      endProgress(json);
    }
    const { snapshot, process: proc } = restarted;
    const kind = snapshot.manifest.kind === 'job' ? 'ranks' : 'process';
    const facts = { kind, pid: proc.pid, ...restoredFrom(snapshot), lazy: proc.lazyPages !== undefined, ...(proc.lazyPages ? { lazyPages: proc.lazyPages } : {}) } as const;
    if (values.detach) {
      if (json) printResult('restart', { ...facts, detached: true });
      else println(`restarted pid ${proc.pid} from ${snapshot.dir} (${facts.crs.name}), detached${proc.lazyPages ? `; its memory comes in through CRIU's lazy-pages daemon, pid ${proc.lazyPages.pid}: do not kill it` : ''}`);
      return 0;
    }
    if (proc.job) {
      // A job's coordinator is this process: signals end the job as they do for ckpt run.
      const job = proc.job;
      // Signals end it (or checkpoint it: --checkpoint-signal); a dead rank brings it back (--max-restarts).
      const options = { ...where, intervalMs: interval === undefined ? undefined : interval * 1000, keep, envRefresh: unattended.envRefresh };
      const done = runUnattended(job, unattended, { store: job.store, relaunch: (s) => (s ? restartJob(s, options) : restartJob(snapshot as JobSnapshot, options)) });
      for (const sig of FORWARDED) process.off(sig, catchEarly);
      if (json) printResult('restart', { ...facts, detached: false, job: job.id, name: job.name, pids: job.pids });
      // A signal that came while the ranks were being restored: handled now.
      if (early) process.emit(early, early);
      return done;
    }
    if (json) printResult('restart', { ...facts, detached: false });
    // Signals meant for us go to the restored process, which then decides our exit.
    forwardTo = (sig) => void signalPid(proc.pid, sig);
    if (early) forwardTo(early);
    try {
      const exit = await proc.wait();
      if (exit.error) process.stderr.write(`${formatError(exit.error)}\n`);
      if (exit.signal) return signalStatus(exit.signal);
      return exit.code ?? 0;
    } finally {
      for (const sig of FORWARDED) process.off(sig, catchEarly);
    }
  },
};
