// `ckpt restart SNAPSHOT`: bring a process back; in the foreground, wait for it
// and exit with its status.
import { signalStatus } from '../../util/exit-status.js';
import { parse, intOption, type Command } from '../command.js';
import { UsageError } from '../../errors.js';
import { restartSnapshot } from '../../process/restart.js';
import { restartJob } from '../../runtime/restart.js';
import { launcherFrom } from '../launcher-options.js';
import { runUnattended, unattendedFrom } from '../unattended.js';
import { restartSpec } from '../spec/restart.js';
import { openSnapshot, type JobSnapshot, type Snapshot } from '../../store/store.js';
import { isIsolatedSnapshot, restartIsolated } from '../../isolate/restore.js';
import { signalPid } from '../../util/signals.js';
import { endProgress, formatError, println, progress } from '../output.js';
import { printResult } from '../json.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

async function restartIsolatedJob(snapshot: Snapshot, verify: boolean, json: boolean): Promise<number> {
  let restarted;
  try {
    restarted = await restartIsolated(snapshot, { verify, onProgress: progress(json) });
  } finally {
    endProgress(json);
  }
  const { job } = restarted;
  if (json) printResult('restart', { kind: 'isolated', detached: false, pid: job.rootPid, ...restoredFrom(snapshot), job: job.id, name: job.name });
  // Signals meant for us end the restored job, as for ckpt run --isolate.
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts === 1) void job.end();
    else job.kill();
  };
  for (const sig of FORWARDED) process.on(sig, onSignal);
  try {
    return (await job.wait()).status;
  } finally {
    for (const sig of FORWARDED) process.off(sig, onSignal);
  }
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
    for (const [flag, file] of Object.entries(outputs)) if (file === '') throw new UsageError(`--${flag} takes a file name`);
    const json = values.json === true;
    // A snapshot of an isolated job comes back as a job in fresh namespaces.
    const trustOwner = values['trust-owner'] === true;
    const opened = openSnapshot(positionals[0]!, { seq: intOption(values.seq, 'seq', 1), trustOwner });
    // A job resumes its recorded --interval/--keep unless given here (--interval 0: no periodic checkpoints).
    const interval = intOption(values.interval, 'interval', 0);
    const keep = intOption(values.keep, 'keep', 1);
    if ((interval !== undefined || keep !== undefined) && opened.manifest.kind !== 'job') {
      throw new UsageError('--interval and --keep go with the snapshot of a job');
    }
    const placed = values.launcher !== undefined || values.nodes !== undefined || values.distribution !== undefined || values.bind !== undefined;
    if (placed && opened.manifest.kind !== 'job') throw new UsageError('--launcher, -N, --distribution and --bind go with the snapshot of a job');
    // A job's ranks are placed anew: on this host, or across the nodes of this Slurm allocation.
    const where = opened.manifest.kind === 'job' ? { ...launcherFrom(values), ...(values.bind !== undefined ? { bind: values.bind } : {}) } : {};
    const supervised = Object.values(unattended.supervise).some((v) => v !== undefined && v !== false);
    if (supervised && opened.manifest.kind !== 'job') {
      throw new UsageError('--checkpoint-signal, --max-restarts and --restart-from-scratch go with the snapshot of a job');
    }
    const redirected = values.stdout !== undefined || values.stderr !== undefined || (values.log !== undefined && !values.detach);
    if (redirected && (opened.manifest.kind !== 'process' || opened.manifest.crs.name !== 'criu' || isIsolatedSnapshot(opened.manifest))) {
      throw new UsageError('--stdout, --stderr and --log (without --detach) go with the snapshot of a process made by criu');
    }
    if (isIsolatedSnapshot(opened.manifest)) {
      if (values.detach) throw new UsageError('--detach is not supported for a snapshot of an isolated job');
      return restartIsolatedJob(opened, values['no-verify'] !== true, json);
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
    const facts = { kind, pid: proc.pid, ...restoredFrom(snapshot) } as const;
    if (values.detach) {
      if (json) printResult('restart', { ...facts, detached: true });
      else println(`restarted pid ${proc.pid} from ${snapshot.dir} (${facts.crs.name}), detached`);
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
