// `ckpt checkpoint --pid PID --dir DIR`: snapshot a running process tree from outside.
import { isJobCheckpointer, JOB_CHECKPOINTERS } from '../../crs/job-registry.js';
import { parse, intOption, type Command } from '../command.js';
import { UsageError } from '../../errors.js';
import { checkpointProcess } from '../../process/external.js';
import { checkpointJob } from '../../control/job-control.js';
import { findJob } from '../../registry/jobs.js';
import { checkpointIsolatedJob } from '../../isolate/checkpoint.js';
import type { EndState } from '../../store/manifest.js';
import { endProgress, figuresJson, figuresText, printJson, println, progress, rankProgress } from '../output.js';
import { closeSnapshot, openSnapshot } from '../../store/store.js';

const usage =
  'ckpt checkpoint --pid PID --dir DIR [--leave-running | --stop | --kill] [--crs NAME] [--json]\n       ckpt checkpoint JOB [--dir STORE] [--stop | --term] [--crs criu|self] [--json]';

function endState(values: { 'leave-running'?: boolean; stop?: boolean; kill?: boolean }): EndState {
  const chosen = [values['leave-running'] && 'continue', values.stop && 'stop', values.kill && 'terminate'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError('choose one of --leave-running, --stop and --kill');
  return (chosen[0] as EndState | undefined) ?? 'continue';
}

async function checkpointIsolated(job: string, dir: string | undefined, then: EndState, json: boolean): Promise<number> {
  const started = Date.now();
  let result;
  try {
    result = await checkpointIsolatedJob({ job, dir, then, onProgress: progress(json) });
  } finally {
    endProgress(json);
  }
  const { snapshot, stats, bytes } = result;
  const ms = Date.now() - started;
  const figures = { bytes, durationMs: ms, ...(stats ? { frozenMs: Math.round(stats.frozenTimeUs / 1000) } : {}) };
  if (json) {
    printJson({
      ok: true,
      job: result.job.id,
      name: result.job.name,
      snapshot: snapshot.dir,
      store: snapshot.store,
      seq: snapshot.seq,
      crs: snapshot.manifest.crs,
      endState: then,
      processes: result.processes,
      files: snapshot.manifest.files.length,
      ms,
      ...figuresJson(figures),
    });
  } else {
    const after = { continue: 'left running', stop: `left stopped (ckpt resume ${result.job.name})`, terminate: 'killed' }[then];
    println(`checkpointed job ${result.job.id} (${result.processes} processes) into ${snapshot.dir} (seq ${snapshot.seq}): ${figuresText(figures)}; job ${after}`);
  }
  return 0;
}

export const checkpointCommand: Command = {
  name: 'checkpoint',
  summary: 'checkpoint a running process tree into a snapshot store',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        pid: { type: 'string' },
        dir: { type: 'string', short: 'd' },
        'leave-running': { type: 'boolean' },
        stop: { type: 'boolean' },
        kill: { type: 'boolean' },
        term: { type: 'boolean' },
        crs: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      usage,
    );
    if (positionals.length > 1 || (positionals.length === 1 && values.pid !== undefined)) {
      throw new UsageError(`unexpected argument '${positionals.at(-1)}'`, { hint: `usage: ${usage}` });
    }
    if (positionals.length === 1) return checkpointJobCommand(positionals[0]!, values);
    if (values.term) throw new UsageError('--term is for jobs; a process is killed with --kill');
    const pid = intOption(values.pid, 'pid', 0);
    if (pid === undefined) throw new UsageError('--pid is required', { hint: `usage: ${usage}` });
    if (!values.dir) throw new UsageError('--dir is required', { hint: `usage: ${usage}` });
    const then = endState(values);
    const json = values.json === true;
    const started = Date.now();
    let snapshot;
    try {
      snapshot = await checkpointProcess({ pid, dir: values.dir, then, crs: values.crs, onProgress: progress(json) });
    } finally {
      endProgress(json);
    }
    const ms = Date.now() - started;
    const figures = { bytes: snapshot.bytes, durationMs: ms, ...(snapshot.frozenMs !== undefined ? { frozenMs: snapshot.frozenMs } : {}) };
    if (json) {
      printJson({
        ok: true,
        pid,
        snapshot: snapshot.dir,
        store: snapshot.store,
        seq: snapshot.seq,
        crs: snapshot.manifest.crs,
        endState: then,
        files: snapshot.manifest.files.length,
        ms,
        ...figuresJson(figures),
      });
    } else {
      const after = { continue: 'left running', stop: 'left stopped (ckpt resume to continue)', terminate: 'killed' }[then];
      println(`checkpointed pid ${pid} into ${snapshot.dir} (seq ${snapshot.seq}, ${snapshot.manifest.crs.name} ${snapshot.manifest.crs.version}): ${figuresText(figures)}; process ${after}`);
    }
    return 0;
  },
};

/** `ckpt checkpoint JOB`: a coordinated checkpoint of a running job. */
async function checkpointJobCommand(
  query: string,
  values: { dir?: string; stop?: boolean; term?: boolean; kill?: boolean; 'leave-running'?: boolean; crs?: string; json?: boolean },
): Promise<number> {
  // An isolated job (ckpt run --isolate) is dumped whole by CRIU, not coordinated.
  const found = findJob(query);
  if (found.kind === 'isolated') {
    if (values.crs !== undefined && values.crs !== 'criu') throw new UsageError('an isolated job is checkpointed with CRIU');
    const then = endState({ 'leave-running': values['leave-running'], stop: values.stop, kill: values.kill || values.term });
    return checkpointIsolated(found.id, values.dir, then, values.json === true);
  }
  if (values.crs !== undefined && !isJobCheckpointer(values.crs)) throw new UsageError(`a job is checkpointed by ${JOB_CHECKPOINTERS.join(' or ')}, not '${values.crs}'`);
  const then = endState({ 'leave-running': values['leave-running'], stop: values.stop, kill: values.kill || values.term });
  const started = Date.now();
  const json = values.json === true;
  let r;
  try {
    r = await checkpointJob(query, { then, ...(values.dir ? { store: values.dir } : {}), ...(values.crs ? { crs: values.crs } : {}) }, undefined, rankProgress(json));
  } finally {
    endProgress(json);
  }
  const ms = Date.now() - started;
  const figures = { bytes: snapshotBytes(r.snapshot), durationMs: ms };
  if (values.json) printJson({ ok: true, job: r.job.id, name: r.job.name, snapshot: r.snapshot, store: r.store, seq: r.seq, endState: then, ms, ...figuresJson(figures) });
  else {
    const after = { continue: 'continues', stop: 'is stopped (ckpt kill JOB --signal CONT resumes it)', terminate: 'was ended' }[then];
    println(`checkpointed job ${r.job.name} (${r.job.size} ranks) into ${r.snapshot} (seq ${r.seq}): ${figuresText(figures)}; the job ${after}`);
  }
  return 0;
}

/** The size of a committed snapshot's files, as its manifest records them. */
function snapshotBytes(dir: string): number {
  const snapshot = openSnapshot(dir);
  try {
    return snapshot.manifest.files.reduce((n, f) => n + f.size, 0);
  } finally {
    closeSnapshot(snapshot);
  }
}
