// `ckpt restart SNAPSHOT`: bring a process back; in the foreground, wait for it
// and exit with its status.
import { constants } from 'node:os';
import { parse, intOption, type Command } from '../command.js';
import { UsageError } from '../../errors.js';
import { restartSnapshot } from '../../process/restart.js';
import { endJobOnSignals } from '../../runtime/launcher.js';
import { openSnapshot, type Snapshot } from '../../store/store.js';
import { isIsolatedSnapshot, restartIsolated } from '../../isolate/restore.js';
import { signalPid } from '../../util/signals.js';
import { endProgress, formatError, printJson, println, progress } from '../output.js';

const usage = 'ckpt restart SNAPSHOT [--seq N] [--detach [--log FILE]] [--no-verify] [--trust-owner] [--interval SEC] [--keep K] [--json]';
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

async function restartIsolatedJob(snapshot: Snapshot, verify: boolean, json: boolean): Promise<number> {
  let restarted;
  try {
    restarted = await restartIsolated(snapshot, { verify, onProgress: progress(json) });
  } finally {
    endProgress(json);
  }
  const { job } = restarted;
  if (json) printJson({ ok: true, detached: false, job: job.id, name: job.name, pid: job.rootPid, snapshot: snapshot.dir, seq: snapshot.seq, crs: 'criu' });
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

export const restartCommand: Command = {
  name: 'restart',
  summary: 'restart a process from a snapshot (the newest in a store, or --seq N)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        seq: { type: 'string' },
        detach: { type: 'boolean', default: false },
        log: { type: 'string' },
        'no-verify': { type: 'boolean', default: false },
        'trust-owner': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        interval: { type: 'string' },
        keep: { type: 'string' },
      },
      usage,
    );
    if (positionals.length !== 1) throw new UsageError('name one snapshot', { hint: `usage: ${usage}` });
    if (values.log && !values.detach) throw new UsageError('--log goes with --detach');
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
    if (isIsolatedSnapshot(opened.manifest)) {
      if (values.detach) throw new UsageError('--detach is not supported for a snapshot of an isolated job');
      return restartIsolatedJob(opened, values['no-verify'] !== true, json);
    }
    // A job's ranks are being started or restored: a signal meanwhile ends the job once it stands.
    let early: NodeJS.Signals | undefined;
    const catchEarly = (sig: NodeJS.Signals) => void (early ??= sig);
    if (opened.manifest.kind === 'job') for (const sig of FORWARDED) process.on(sig, catchEarly);
    let restarted;
    try {
      restarted = await restartSnapshot(positionals[0]!, {
        seq: intOption(values.seq, 'seq', 1),
        detach: values.detach === true,
        logFile: values.log,
        verify: values['no-verify'] !== true,
        trustOwner,
        onProgress: progress(json),
        job: { intervalMs: interval === undefined ? undefined : interval * 1000, keep },
      });
    } finally {
      for (const sig of FORWARDED) process.off(sig, catchEarly);
      endProgress(json);
    }
    const { snapshot, process: proc } = restarted;
    const facts = { pid: proc.pid, snapshot: snapshot.dir, seq: snapshot.seq, crs: snapshot.manifest.crs.name };
    if (values.detach) {
      if (json) printJson({ ok: true, detached: true, ...facts });
      else println(`restarted pid ${proc.pid} from ${snapshot.dir} (${facts.crs}), detached`);
      return 0;
    }
    if (proc.job) {
      // A job's coordinator is this process: signals end the job as they do for ckpt run.
      const job = proc.job;
      const uninstall = endJobOnSignals(job);
      if (early) process.emit(early, early);
      try {
        if (json) printJson({ ok: true, detached: false, ...facts, job: job.id, name: job.name, ranks: job.pids });
        const result = await job.wait();
        if (result.error) process.stderr.write(`${formatError(result.error)}\n`);
        return result.status;
      } finally {
        uninstall();
      }
    }
    if (json) printJson({ ok: true, detached: false, ...facts });
    // Signals meant for us go to the restored process, which then decides our exit.
    const forward = (sig: NodeJS.Signals) => void signalPid(proc.pid, sig);
    for (const sig of FORWARDED) process.on(sig, forward);
    try {
      const exit = await proc.wait();
      if (exit.error) process.stderr.write(`${formatError(exit.error)}\n`);
      if (exit.signal) return 128 + (constants.signals[exit.signal as NodeJS.Signals] ?? 0);
      return exit.code ?? 0;
    } finally {
      for (const sig of FORWARDED) process.off(sig, forward);
    }
  },
};
