// The exchange job both checkpointers' reliability tests run: start it, collect the
// per-rank checksums it prints, the checksums of an uninterrupted run to compare,
// restart it from its store.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { launchJob, type Job } from '../../dist/runtime/launcher.js';
import { restartSnapshot } from '../../dist/process/restart.js';
import { writeFileSync } from 'node:fs';
import { fixture, tempDir, waitForJobLine, type Program } from '../helpers.js';

export const program = fixture('jobs/exchange.mjs');

export interface ExchangeOptions {
  crs: 'self' | 'criu';
  iters: number;
  name: string;
  env?: Record<string, string>;
  keep?: number;
  /** The OOB transport (default unix). */
  oob?: 'unix' | 'tcp';
}

/** The `rank R checksum X` lines a job prints, by rank. */
export function collect(job: Job): Map<number, string> {
  const sums = new Map<number, string>();
  job.on('output', ({ rank, stream, line }) => {
    const m = /^rank (\d+) checksum (\d+)$/.exec(line.toString().trim());
    if (stream === 'stdout' && m) sums.set(rank, m[2]!);
  });
  return sums;
}

/** A 4-rank exchange job (ended with the test). */
export async function startExchange(t: TestContext, store: string, o: ExchangeOptions): Promise<Job> {
  const job = await launchJob({
    command: process.execPath,
    args: [program],
    size: 4,
    name: o.name,
    output: { mode: 'events' },
    env: { ITERS: String(o.iters), ...o.env },
    store,
    register: false,
    crs: o.crs,
    keep: o.keep,
    ...(o.oob ? { oob: o.oob } : {}),
  });
  t.after(() => job.kill());
  return job;
}

const baselines = new Map<string, Map<number, string>>();

/** The checksums of an uninterrupted run (one run per configuration and test file). */
export async function uninterrupted(t: TestContext, o: ExchangeOptions): Promise<Map<number, string>> {
  const key = JSON.stringify([o.iters, o.env ?? {}]);
  const known = baselines.get(key);
  if (known) return known;
  const job = await startExchange(t, join(tempDir(t), 'unused'), o);
  const sums = collect(job);
  assert.equal((await job.wait()).status, 0);
  assert.equal(sums.size, 4);
  baselines.set(key, sums);
  return sums;
}

/**
 * Resolves at rank 0's next `progress` line (PROGRESS=k in the job's environment):
 * the job has been working since this was called — what a test waits for before it
 * checkpoints mid-run, instead of sleeping.
 */
export const working = (job: Job): Promise<void> => waitForJobLine(job, /^rank 0 progress \d+$/);

/**
 * The environment that holds a `ckpt run` of the exchange job at iteration 100 (every
 * rank waits there, at safe points, until `file` exists; the checksums do not change),
 * and a wait for every rank to stand there: the job cannot end before the test has
 * checkpointed it, however slow or fast the machine.
 */
export function held(dir: string) {
  const file = join(dir, 'go');
  return {
    env: { GATE_AT: '100', GATE_FILE: file },
    reached: async (run: Program) => {
      for (let r = 0; r < 4; r++) await run.waitFor(new RegExp(`^\\[${r}\\] rank ${r} gated`));
    },
    release: () => writeFileSync(file, ''),
  };
}

/** Collects what is written to it, as text. */
export class TextSink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/**
 * Restarts the job from the newest snapshot in `store` (ended with the test). With
 * `stderr`, the ranks' stderr goes there, [rank]-prefixed; the sinks are there from
 * the start, as a restored rank may print before restartSnapshot() returns.
 */
export async function restartJob(t: TestContext, store: string, stderr?: Writable): Promise<Job> {
  const output = stderr ? ({ mode: 'prefix', stdout: new TextSink(), stderr } as const) : ({ mode: 'events' } as const);
  const again = await restartSnapshot(store, { job: { output, register: false } });
  const job = again.process.job!;
  t.after(() => job.kill());
  return job;
}

/** Restarts the job from the newest snapshot in `store`; resolves with its checksums once it has exited 0. */
export async function restartToEnd(t: TestContext, store: string): Promise<Map<number, string>> {
  const job = await restartJob(t, store);
  const sums = collect(job);
  const r = await job.wait();
  assert.equal(r.status, 0, r.error?.message);
  return sums;
}
