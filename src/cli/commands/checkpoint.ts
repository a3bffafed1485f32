// `ckpt checkpoint --pid PID --dir DIR`: snapshot a running process tree from outside.
import { isJobCheckpointer, JOB_CHECKPOINTERS } from '../../crs/job-registry.js';
import { parse, intOption, type Command } from '../command.js';
import { checkpointSpec } from '../spec/checkpoint.js';
import { CkptError, ErrorCodes, UsageError } from '../../errors.js';
import { checkpointProcess } from '../../process/external.js';
import { checkpointJob } from '../../control/job-control.js';
import { findJob } from '../../registry/jobs.js';
import { checkpointIsolatedJob } from '../../isolate/checkpoint.js';
import { checkpointAcrossNodes } from '../../isolate/nodes.js';
import type { EndState } from '../../store/manifest.js';
import { endProgress, figuresJson, figuresText, println, progress, rankProgress, type CheckpointFigures } from '../output.js';
import { runPeriodic } from '../periodic.js';
import { printResult } from '../json.js';
import { openSnapshot, closeSnapshot, type Snapshot } from '../../store/store.js';
import { catchInterrupts } from '../interrupt.js';
import { InterruptedError } from '../../errors.js';

type EndValues = { 'leave-running'?: boolean; stop?: boolean; term?: boolean; kill?: boolean };

/** The end state, and for a process how terminate ends it (--term: SIGTERM, --kill: SIGKILL). */
function endState(values: EndValues): EndState {
  const chosen = [values['leave-running'] && 'continue', values.stop && 'stop', values.term && 'terminate', values.kill && 'terminate'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError('choose one of --leave-running, --stop, --term and --kill');
  return (chosen[0] as EndState | undefined) ?? 'continue';
}

async function checkpointIsolated(job: string, dir: string | undefined, then: EndState, json: boolean): Promise<number> {
  const started = Date.now();
  let result;
  const interrupts = catchInterrupts();
  try {
    result = await checkpointIsolatedJob({ job, dir, then, onProgress: progress(json), signal: interrupts.signal });
  } catch (err) {
    endProgress(json);
    if (err instanceof InterruptedError) return interrupts.report(`checkpoint aborted, job ${job} left running`, json);
    throw err;
  } finally {
    endProgress(json);
    interrupts.dispose();
  }
  const { snapshot, stats, bytes } = result;
  const ms = Date.now() - started;
  const figures = { bytes, durationMs: ms, ...(stats ? { frozenMs: Math.round(stats.frozenTimeUs / 1000) } : {}) };
  if (json) {
    printResult('checkpoint', {
      kind: 'isolated',
      job: result.job.id,
      name: result.job.name,
      processes: result.processes,
      ...snapshotFacts(snapshot, then, figures),
    });
  } else {
    const after = { continue: 'left running', stop: `left stopped (ckpt resume ${result.job.name})`, terminate: 'killed' }[then];
    println(`checkpointed job ${result.job.id} (${result.processes} processes) into ${snapshot.dir} (seq ${snapshot.seq}): ${figuresText(figures)}; job ${after}`);
  }
  return 0;
}

/** An isolated mpirun job across nodes: every node's part dumped, the job ended (isolate/nodes.ts). */
async function checkpointNodes(job: string, dir: string | undefined, then: EndState, json: boolean): Promise<number> {
  if (then !== 'terminate') {
    throw new UsageError('a job across nodes is checkpointed with --term', { hint: 'its nodes are dumped one after another: only ending each at its dump keeps them consistent' });
  }
  const started = Date.now();
  let r;
  try {
    r = await checkpointAcrossNodes({ job, dir, onProgress: progress(json) });
  } finally {
    endProgress(json);
  }
  const durationMs = Date.now() - started;
  if (json) printResult('checkpoint', { kind: 'isolated-nodes', name: r.name, store: r.store, nodes: r.nodes, durationMs });
  else println(`checkpointed job ${r.name} on ${r.nodes.map((n) => n.host).join(', ')} into ${r.store} (${durationMs} ms); job killed (ckpt restart ${r.store} inside the allocation)`);
  return 0;
}

/** The --json facts every checkpoint reports about the snapshot it made, with its figures. */
function snapshotFacts(snapshot: Snapshot, endState: EndState, figures: CheckpointFigures) {
  const m = snapshot.manifest;
  return { snapshot: snapshot.dir, store: snapshot.store, seq: snapshot.seq, crs: { name: m.crs.name, version: m.crs.version }, endState, files: m.files.length, ...figuresJson(figures) };
}

export const checkpointCommand: Command = {
  async run(argv) {
    const { values, positionals, flag } = parse(argv, checkpointSpec);
    if (positionals.length > 1 || (positionals.length === 1 && values.pid !== undefined)) {
      throw new UsageError(`unexpected argument '${positionals.at(-1)}'`, { hint: 'a process is named by --pid PID, a job by JOB, not both' });
    }
    const interval = values.interval === undefined ? undefined : Number(values.interval);
    const keep = values.keep === undefined ? undefined : Number(values.keep);
    if (keep !== undefined && interval === undefined) throw new UsageError(`${flag('keep')} goes with ${flag('interval')}`);
    if (positionals.length === 1) {
      if (interval !== undefined) throw new UsageError(`${flag('interval')} is for --pid here; a job's schedule is set by ckpt run --interval`);
      return checkpointJobCommand(positionals[0]!, values);
    }
    const pid = intOption(values.pid, 'pid', 0);
    if (pid === undefined) throw new UsageError('say which process with --pid PID (or which job: ckpt checkpoint JOB)');
    if (!values.dir) throw new UsageError('say where with --dir DIR (the snapshot store)');
    const then = endState(values);
    const json = values.json === true;
    if (interval !== undefined) {
      if (then !== 'continue') throw new UsageError('--interval leaves the process running: it goes without --stop, --term and --kill');
      return runPeriodic({ pid, dir: values.dir, intervalS: interval, keep, crs: values.crs, json });
    }
    const started = Date.now();
    let snapshot;
    // Ctrl-C / SIGTERM: the checkpoint is aborted, the process left running as it was.
    const interrupts = catchInterrupts();
    try {
      const terminateWith = values.term ? 'SIGTERM' : 'SIGKILL';
      snapshot = await checkpointProcess({ pid, dir: values.dir, then, terminateWith, crs: values.crs, onProgress: progress(json), signal: interrupts.signal });
    } catch (err) {
      endProgress(json);
      if (err instanceof InterruptedError) return interrupts.report(`checkpoint aborted, pid ${pid} left running`, json);
      throw err;
    } finally {
      endProgress(json);
      interrupts.dispose();
    }
    const ms = Date.now() - started;
    const figures = { bytes: snapshot.bytes, durationMs: ms, ...(snapshot.frozenMs !== undefined ? { frozenMs: snapshot.frozenMs } : {}) };
    if (json) {
      printResult('checkpoint', { kind: 'process', pid, ...snapshotFacts(snapshot, then, figures) });
    } else {
      const after = { continue: 'left running', stop: `left stopped (ckpt resume ${pid} continues it)`, terminate: values.term ? 'sent SIGTERM' : 'killed' }[then];
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
  const found = findJobOrPid(query);
  if (found.kind === 'isolated') {
    if (values.crs !== undefined && values.crs !== 'criu') throw new UsageError('an isolated job is checkpointed with CRIU');
    const then = endState(values);
    if (found.isolated?.parts?.length) return checkpointNodes(found.id, values.dir, then, values.json === true);
    return checkpointIsolated(found.id, values.dir, then, values.json === true);
  }
  if (values.crs !== undefined && !isJobCheckpointer(values.crs)) throw new UsageError(`a job is checkpointed by ${JOB_CHECKPOINTERS.join(' or ')}, not '${values.crs}'`);
  const then = endState(values);
  const started = Date.now();
  const json = values.json === true;
  let r;
  // Ctrl-C / SIGTERM: the coordinator is asked to abort the checkpoint (the job goes on); we leave.
  const interrupts = catchInterrupts();
  try {
    r = await checkpointJob(query, { then, ...(values.dir ? { store: values.dir } : {}), ...(values.crs ? { crs: values.crs } : {}) }, undefined, interrupts.signal, rankProgress(json));
  } catch (err) {
    endProgress(json);
    if (err instanceof InterruptedError) return interrupts.report(`checkpoint of job ${found.name} aborted, the job runs on`, json);
    throw err;
  } finally {
    endProgress(json);
    interrupts.dispose();
  }
  const ms = Date.now() - started;
  // The coordinator answers with where the snapshot went; what it holds is in its manifest.
  const snapshot = openSnapshot(r.snapshot, { trustOwner: true });
  try {
    const figures = { bytes: snapshot.manifest.files.reduce((n, f) => n + f.size, 0), durationMs: ms };
    const timing = { ...(r.phasesMs ? { phasesMs: r.phasesMs } : {}), ...(r.syncMs !== undefined ? { syncMs: r.syncMs } : {}) };
    if (json) printResult('checkpoint', { kind: 'ranks', job: r.job.id, name: r.job.name, size: r.job.size, ...snapshotFacts(snapshot, then, figures), ...timing });
    else {
      const after = { continue: 'continues', stop: `is stopped (ckpt resume ${r.job.name} continues it)`, terminate: 'was ended' }[then];
      println(`checkpointed job ${r.job.name} (${r.job.size} ranks) into ${r.snapshot} (seq ${r.seq}): ${figuresText(figures)}; the job ${after}`);
    }
  } finally {
    closeSnapshot(snapshot);
  }
  return 0;
}

/** The job named; a number that is no job is likely a pid (the `ompi-checkpoint PID` habit). */
function findJobOrPid(query: string): ReturnType<typeof findJob> {
  try {
    return findJob(query);
  } catch (err) {
    if (err instanceof CkptError && err.code === ErrorCodes.JOB_NOT_FOUND && /^\d+$/.test(query)) {
      throw new UsageError(`no running job '${query}'`, { hint: `a process? ckpt checkpoint --pid ${query} --dir DIR` });
    }
    throw err;
  }
}
