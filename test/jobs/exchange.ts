// The exchange job both checkpointers' reliability tests run: start it, collect the
// per-rank checksums it prints, and the checksums of an uninterrupted run to compare.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { launchJob, type Job } from '../../dist/runtime/launcher.js';
import { restartSnapshot } from '../../dist/process/restart.js';
import { fixture, tempDir } from '../helpers.js';

export const program = fixture('jobs/exchange.mjs');

export interface ExchangeOptions {
  crs: 'self' | 'criu';
  iters: number;
  name: string;
  env?: Record<string, string>;
  keep?: number;
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

/** Restarts the job from the newest snapshot in `store`; resolves with its checksums once it has exited 0. */
export async function restartToEnd(t: TestContext, store: string): Promise<Map<number, string>> {
  const again = await restartSnapshot(store, { job: { output: { mode: 'events' }, register: false } });
  const job = again.process.job!;
  t.after(() => job.kill());
  const sums = collect(job);
  assert.equal((await job.wait()).status, 0);
  return sums;
}
