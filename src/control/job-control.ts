// Control clients: `ckpt kill` (and later `ckpt checkpoint`) talk to a running
// job's coordinator over its OOB channel, proving membership with the job secret
// read from the private registry entry (wire/hello-proof.ts), as the coordinator does back.
import type { RankProgress } from '../runtime/job-checkpoint.js';
import { constants as osConstants } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CkptError, ErrorCodes, interruption } from '../errors.js';
import { signalGroup, signalPid } from '../util/signals.js';
import { Channel, connectTo, formatAddress, OOB_PROTOCOL_VERSION, parseAddress } from '../wire/channel.js';
import { proveHello, requireAnswerOrRefusal } from '../wire/hello-proof.js';
import type { ControlMessage } from '../wire/frame.js';
import { findJob, isJobAlive, type JobRecord } from '../registry/jobs.js';
import { killIsolatedJob } from '../isolate/job.js';

/** Connects to a job's coordinator as a control client. */
export async function connectControl(record: JobRecord, timeoutMs = 5000): Promise<Channel> {
  const socket = await connectTo(parseAddress(record.address), timeoutMs, `the coordinator of job ${record.id}`);
  const channel = new Channel(socket);
  const proven = proveHello(record.secret, { role: 'control', job: record.id, to: formatAddress(parseAddress(record.address)) });
  channel.send({ type: 'hello', v: OOB_PROTOCOL_VERSION, role: 'control', job: record.id, ...proven });
  const welcome = await channel.next(timeoutMs, `the coordinator of job ${record.id} to answer`).catch((err) => {
    channel.destroy();
    throw err;
  });
  try {
    if (welcome.type !== 'welcome' && welcome.type !== 'error') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `expected welcome, got '${welcome.type}'`);
    requireAnswerOrRefusal(record.secret, 'welcome', proven.nonce, welcome, record.address, `the coordinator of job ${record.id}`, 'refused');
  } catch (err) {
    channel.destroy();
    throw err;
  }
  return channel;
}

/** One request/reply with a job's coordinator. */
export async function controlRequest(record: JobRecord, op: string, body: Record<string, unknown> = {}, timeoutMs = 5000): Promise<ControlMessage> {
  const channel = await connectControl(record, timeoutMs);
  try {
    const reply = await channel.request({ type: 'request', op, ...body }, timeoutMs, `job ${record.id} to answer '${op}'`);
    if (reply.ok !== true) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `job ${record.id} refused '${op}': ${String(reply.message)}`);
    return reply;
  } finally {
    channel.close();
  }
}

/** 'TERM', 'SIGTERM' or '15' → 'SIGTERM'. */
export function parseSignal(text: string): NodeJS.Signals {
  const signals = osConstants.signals as Record<string, number>;
  if (/^\d+$/.test(text)) {
    const name = Object.keys(signals).find((k) => signals[k] === Number(text));
    if (name) return name as NodeJS.Signals;
  } else {
    const name = text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`;
    if (name in signals) return name as NodeJS.Signals;
  }
  throw new CkptError(ErrorCodes.USAGE, `unknown signal '${text}'`);
}

export interface KillResult {
  job: JobRecord;
  /** How the request got there: through the coordinator, or by signals when it did not answer. */
  via: 'coordinator' | 'signals';
}

/**
 * Ends a job (no signal) or delivers a signal to all its ranks. Goes through the
 * coordinator so the launcher ends the job in order; when the coordinator does
 * not answer, signals the launcher and the ranks' process groups directly.
 */
export async function killJob(query: string, signal?: NodeJS.Signals): Promise<KillResult> {
  const job = findJob(query);
  if (job.kind === 'isolated') {
    // No coordinator: an isolated job is ended through its launcher or its pid 1.
    await killIsolatedJob(job, signal);
    return { job, via: 'signals' };
  }
  try {
    await controlRequest(job, 'kill', signal ? { signal } : {});
    return { job, via: 'coordinator' };
  } catch (err) {
    if (!isJobAlive(job)) return { job, via: 'signals' };
    const sig = signal ?? 'SIGTERM';
    if (!signal) signalPid(job.pid, 'SIGTERM');
    for (const r of job.ranks) if (r.pid) signalGroup(r.pid, sig);
    if (err instanceof CkptError && err.code === ErrorCodes.OOB_AUTH) throw err;
    return { job, via: 'signals' };
  }
}

export interface JobCheckpointResult {
  job: JobRecord;
  snapshot: string;
  store: string;
  seq: number;
  /** Each phase as the coordinator timed it (runtime/job-checkpoint.ts phaseClock), and the commit's wait on the disk. */
  phasesMs?: Record<string, number>;
  syncMs?: number;
}

/** A coordinator's timings, kept only when they are what they should be (an older coordinator sends none). */
function timings(reply: Record<string, unknown>): Pick<JobCheckpointResult, 'phasesMs' | 'syncMs'> {
  const p = reply.phasesMs;
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  const phasesMs = p && typeof p === 'object' && !Array.isArray(p) && Object.values(p).every(ok) ? (p as Record<string, number>) : undefined;
  return { ...(phasesMs ? { phasesMs } : {}), ...(ok(reply.syncMs) ? { syncMs: reply.syncMs } : {}) };
}

/**
 * `ckpt checkpoint JOB`: the job's coordinator takes a coordinated checkpoint. Once
 * `signal` is aborted, the coordinator is asked to abort it (it does so at the next
 * phase, before the commit: the ranks resume, the partial snapshot goes) and this
 * rejects with InterruptedError at once, without waiting for that.
 */
export async function checkpointJob(
  query: string,
  request: { then?: string; store?: string; crs?: string } = {},
  timeoutMs = 300_000,
  signal?: AbortSignal,
  /** Each criu rank's bytes written so far, while the ranks dump. */
  onProgress?: (progress: RankProgress) => void,
): Promise<JobCheckpointResult> {
  const job = findJob(query);
  const channel = await connectControl(job);
  if (onProgress) {
    channel.on('message', (m) => {
      if (m.type === 'progress' && typeof m.rank === 'number' && typeof m.bytes === 'number') onProgress(m as unknown as RankProgress);
    });
  }
  const token = randomBytes(8).toString('hex');
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      // Asked on a connection of its own (the first waits for the checkpoint's reply).
      controlRequest(job, 'abort-checkpoint', { token }).catch(() => {}).finally(() => reject(interruption(signal!)));
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    const ask = { type: 'request', op: 'checkpoint', token, ...request, ...(onProgress ? { progress: true } : {}) } as const;
    const replied = channel.request(ask, timeoutMs, `job ${job.id} to finish its checkpoint`).catch((err: CkptError) => {
      // The job's coordinator went away mid-checkpoint: the job ended (or its launcher died); nothing was committed.
      if (err.code !== ErrorCodes.OOB_UNREACHABLE) throw err;
      throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `checkpoint of job ${job.id} failed: the job ended before it was committed`, { cause: err });
    });
    replied.catch(() => {});
    const reply = await Promise.race([replied, aborted]);
    if (reply.ok !== true) {
      const code = Object.values(ErrorCodes).includes(reply.code as never) ? (reply.code as CkptError['code']) : ErrorCodes.CHECKPOINT_FAILED;
      throw new CkptError(code, String(reply.message));
    }
    return { job, snapshot: String(reply.snapshot), store: String(reply.store), seq: Number(reply.seq), ...timings(reply) };
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    channel.close();
  }
}
