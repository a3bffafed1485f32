// `ckpt restart SNAPSHOT`: bring a process back; in the foreground, wait for it
// and exit with its status.
import { constants } from 'node:os';
import { parse, intOption, type Command } from '../command.js';
import { UsageError } from '../../errors.js';
import { restartSnapshot } from '../../process/restart.js';
import { openSnapshot, type Snapshot } from '../../store/store.js';
import { isIsolatedSnapshot, restartIsolated } from '../../isolate/restore.js';
import { signalPid } from '../../util/signals.js';
import { endProgress, formatError, printJson, println, progress } from '../output.js';

const usage = 'ckpt restart SNAPSHOT [--seq N] [--detach [--log FILE]] [--no-verify] [--json]';
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
        json: { type: 'boolean', default: false },
      },
      usage,
    );
    if (positionals.length !== 1) throw new UsageError('name one snapshot', { hint: `usage: ${usage}` });
    if (values.log && !values.detach) throw new UsageError('--log goes with --detach');
    const json = values.json === true;
    // A snapshot of an isolated job comes back as a job in fresh namespaces.
    const opened = openSnapshot(positionals[0]!, { seq: intOption(values.seq, 'seq', 1) });
    if (isIsolatedSnapshot(opened.manifest)) {
      if (values.detach) throw new UsageError('--detach is not supported for a snapshot of an isolated job');
      return restartIsolatedJob(opened, values['no-verify'] !== true, json);
    }
    let restarted;
    try {
      restarted = await restartSnapshot(positionals[0]!, {
        seq: intOption(values.seq, 'seq', 1),
        detach: values.detach === true,
        logFile: values.log,
        verify: values['no-verify'] !== true,
        onProgress: progress(json),
      });
    } finally {
      endProgress(json);
    }
    const { snapshot, process: proc } = restarted;
    const facts = { pid: proc.pid, snapshot: snapshot.dir, seq: snapshot.seq, crs: snapshot.manifest.crs.name };
    if (values.detach) {
      if (json) printJson({ ok: true, detached: true, ...facts });
      else println(`restarted pid ${proc.pid} from ${snapshot.dir} (${facts.crs}), detached`);
      return 0;
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
