// `ckpt checkpoint --pid P --dir D --interval S [--keep K]`: periodic checkpoints of a
// process until it exits (process/periodic.ts does the work). Ctrl-C or SIGTERM end
// the series between checkpoints (one in progress is let finish) with 128+signal.
import { checkpointPeriodically } from '../process/periodic.js';
import { signalStatus } from '../util/exit-status.js';
import { endProgress, formatError, println, progress } from './output.js';
import { printResult } from './json.js';

export interface PeriodicCommand {
  pid: number;
  dir: string;
  intervalS: number;
  keep?: number;
  crs?: string;
  json: boolean;
}

export async function runPeriodic(c: PeriodicCommand): Promise<number> {
  const abort = new AbortController();
  let endedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (endedBy) return;
    endedBy = signal;
    abort.abort();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  let result;
  try {
    result = await checkpointPeriodically({
      pid: c.pid,
      dir: c.dir,
      intervalMs: c.intervalS * 1000,
      keep: c.keep,
      crs: c.crs,
      signal: abort.signal,
      onProgress: progress(c.json),
      onStart: () => process.stderr.write(`ckpt: checkpointing pid ${c.pid} every ${c.intervalS} s into ${c.dir} until it exits (Ctrl-C ends this)\n`),
      onCheckpoint: (s, removed) => {
        endProgress(c.json);
        if (c.json) return;
        const bytes = s.manifest.files.reduce((n, f) => n + f.size, 0);
        const gone = removed.length ? `; removed seq ${removed.join(', ')}` : '';
        println(`checkpointed pid ${c.pid} into ${s.dir} (seq ${s.seq}, ${(bytes / 1e6).toFixed(1)} MB)${gone}`);
      },
      onError: (err) => {
        endProgress(c.json);
        process.stderr.write(`${formatError(err)}; trying again in ${c.intervalS} s\n`);
      },
    });
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
  const { checkpoints, failures, last, ended } = result;
  if (c.json) {
    printResult('checkpoint', { kind: 'series', pid: c.pid, store: c.dir, ended, checkpoints, failures, seq: last?.seq ?? null, snapshot: last?.dir ?? null });
  } else {
    const why = ended === 'exited' ? `pid ${c.pid} exited` : `interrupted (${endedBy})`;
    const newest = last ? `, the newest seq ${last.seq} (${last.dir})` : '';
    println(`${why}: ${checkpoints} checkpoint(s) taken${failures ? `, ${failures} failed` : ''}${newest}`);
  }
  return ended === 'interrupted' && endedBy ? signalStatus(endedBy) : 0;
}
