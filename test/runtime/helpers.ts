// Shared by the runtime tests: fixtures, a private state dir, the CLI, and the
// "no process left behind" check (every process whose environment names the job).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/runtime/${name}`, import.meta.url));
}

export const ckptBin = fileURLToPath(new URL('../../bin/ckpt', import.meta.url));

/** A fresh CKPT_STATE_DIR for this test file's process (the registry lives there). */
export function privateStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-test-state-'));
  process.env.CKPT_STATE_DIR = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Pids of live processes whose environment holds NAME=VALUE (zombies have none). */
export function processesWithEnv(name: string, value: string): number[] {
  const needle = Buffer.from(`${name}=${value}\0`);
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`);
      if (env.indexOf(needle) === 0 || env.indexOf(Buffer.concat([Buffer.from('\0'), needle])) >= 0) out.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/**
 * Asserts that no process of the job is left. Killed processes take a moment to
 * be torn down by the kernel, so this looks again for up to 3 s before failing.
 */
export async function assertNoneLeft(name: string, value: string): Promise<void> {
  let left: number[] = [];
  for (let i = 0; i < 30; i++) {
    left = processesWithEnv(name, value);
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const what = left.map((p) => {
    try {
      return `${p}:${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`;
    } catch {
      return String(p);
    }
  });
  assert.fail(`processes left behind with ${name}=${value}: ${what.join('; ')}`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `ckpt ARGS…`; `onSpawn` gets the child (to signal it); killed after `timeoutMs`. */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onStdout?: (text: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ckptBin, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      options.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The JSON after `RESULT ` on lines of the form `[rank] RESULT {...}`, by rank. */
export function results(stdout: string): Map<number, any> {
  const out = new Map<number, any>();
  for (const line of stdout.split('\n')) {
    const m = /^\[(\d+)\] RESULT (.*)$/.exec(line);
    if (m) out.set(Number(m[1]), JSON.parse(m[2]!));
  }
  return out;
}

export function uniqueMark(): string {
  return `m${process.pid}x${Math.random().toString(36).slice(2)}`;
}

import { launchJob, type Job, type JobResult, type LaunchOptions } from '../../dist/runtime/index.js';

export interface Ran {
  job: Job;
  result: JobResult;
  /** Lines per rank and stream. */
  stdout: string[][];
  stderr: string[][];
  results: Map<number, any>;
}

/** Launches a node fixture as a job, collects its output, waits, and checks nothing is left. */
export async function runJob(
  name: string,
  size: number,
  options: Partial<LaunchOptions> & { argv?: string[]; whileRunning?: (job: Job) => Promise<void> | void } = {},
): Promise<Ran> {
  const { argv = [], whileRunning, ...rest } = options;
  const job = await launchJob({ command: process.execPath, args: [fixture(name), ...argv], size, output: { mode: 'events' }, ...rest });
  const stdout: string[][] = Array.from({ length: size }, () => []);
  const stderr: string[][] = Array.from({ length: size }, () => []);
  const found = new Map<number, any>();
  job.on('output', ({ rank, stream, line }) => {
    const text = line.toString();
    (stream === 'stdout' ? stdout : stderr)[rank]!.push(text);
    const m = /^RESULT (.*)$/.exec(text);
    if (m) found.set(rank, JSON.parse(m[1]!));
  });
  if (whileRunning) await whileRunning(job);
  const result = await job.wait();
  await assertNoneLeft('CKPT_JOB_ID', job.id);
  return { job, result, stdout, stderr, results: found };
}

/** Resolves when some rank prints a line matching `re` (bounded: fails after 30 s). */
export function waitForLine(job: Job, re: RegExp, count = 1): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count} line(s) matching ${re}`)), 30_000);
    const onLine = ({ line }: { line: Buffer }) => {
      if (re.test(line.toString()) && ++seen === count) {
        clearTimeout(timer);
        job.off('output', onLine);
        resolve();
      }
    };
    job.on('output', onLine);
  });
}
