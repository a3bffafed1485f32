// The one helpers module every test imports: run the real `ckpt` executable, real
// programs, real CRIU; jobs launched in the test's process; fault points
// (CKPT_FAULT gates); the tests' other user (helpers/users.ts, re-exported).
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { findCriu } from '../dist/criu/locate/find.js';
import { launchJob, type Job, type JobResult, type LaunchOptions } from '../dist/runtime/index.js';
import type { FaultActor, FaultPoint } from '../dist/util/faults.js';

export * from './helpers/users.js';

export const root = fileURLToPath(new URL('../', import.meta.url));
export const ckptBin = join(root, 'bin', 'ckpt');
export const fixture = (name: string): string => join(root, 'test', 'fixtures', name);

/** Tests that need CRIU skip without it — except in CI (CKPT_REQUIRE_CRIU=1), where they fail. */
export async function needCriu(t: TestContext): Promise<boolean> {
  try {
    await findCriu();
    return true;
  } catch (err) {
    if (process.env.CKPT_REQUIRE_CRIU === '1') throw err;
    t.skip(`CRIU unavailable: ${(err as Error).message}`);
    return false;
  }
}

export function tempDir(t: TestContext, prefix = 'ckpt-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A tmpfs of its own (root only), unmounted after the test. Not under tempDir():
 * it must be unmounted before its mount point is removed.
 */
export function mountTmpfs(t: TestContext, size: string): string {
  const mnt = mkdtempSync(join(tmpdir(), 'ckpt-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mnt]);
  t.after(() => {
    execFileSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

/**
 * Fills the file system `file` is on, to the last byte: written in chunks until
 * ENOSPC, so however much was free, nothing is left (a single large write of a
 * guessed size can fall short, and costs its size in memory).
 */
export function fillUp(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(4 << 20);
  try {
    for (let size = chunk.length; size >= 512; ) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size >>= 1;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Every directory below `dir` (and it) is 0700 and every file 0600: snapshots hold process memory. */
export function assertPrivate(dir: string): void {
  const mode = statSync(dir).mode & 0o777;
  if (mode !== 0o700) throw new Error(`${dir} has mode ${mode.toString(8)}, not 700`);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) assertPrivate(path);
    else if ((statSync(path).mode & 0o777) !== 0o600) throw new Error(`${path} has mode ${(statSync(path).mode & 0o777).toString(8)}, not 600`);
  }
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CkptOptions {
  /** SIGKILLed after this long (default 120 s). */
  timeoutMs?: number;
  /** Called with all the output so far and the child (to signal it) on each chunk. */
  onStdout?: (text: string, child: ChildProcess) => void;
}

/** Runs `ckpt ARGS` to completion without blocking the test's event loop. */
export async function ckpt(args: string[], env: NodeJS.ProcessEnv = {}, options: number | CkptOptions = {}): Promise<Result> {
  const { timeoutMs = 120_000, onStdout } = typeof options === 'number' ? { timeoutMs: options } : options;
  const child = spawn(process.execPath, [ckptBin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    onStdout?.(stdout, child);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** A running program whose stdout is read line by line. */
export class Program {
  readonly child: ChildProcess;
  private readonly session: boolean;
  readonly lines: string[] = [];
  stderr = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /**
   * `session: true` starts it leading a session of its own (setsid), as a process
   * dumped from outside must be wherever the test runner's session is led from
   * outside its pid namespace (CI in a container): CRIU cannot dump it otherwise.
   */
  constructor(command: string, args: string[], env: NodeJS.ProcessEnv = {}, where: string | { cwd?: string; session?: boolean } = {}) {
    const { cwd, session } = typeof where === 'string' ? { cwd: where, session: false } : where;
    this.session = session === true;
    this.child = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: this.session });
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      if (buf) this.lines.push(buf);
      for (const w of this.waiters.splice(0)) w();
      resolve({ code, signal });
    }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits for a line matching `re` (bounded: a test never hangs). */
  async waitFor(re: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit !== undefined) return hit;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        await new Promise((r) => setTimeout(r, 50));
        const late = this.lines.find((l) => re.test(l));
        if (late !== undefined) return late;
        throw new Error(`exited before printing ${re}; output: ${this.lines.join(' | ')} ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; output: ${this.lines.join(' | ')} ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      // A session leader's group goes with it (never a pid <= 1: -1 is every process).
      if (this.session && this.pid > 1) {
        try {
          process.kill(-this.pid, signal);
        } catch {
          this.child.kill(signal);
        }
      } else this.child.kill(signal);
    }
    await this.exited;
  }
}

/** Runs `ckpt ARGS` as a Program (for restarts whose output is read as it comes). */
export const ckptProgram = (args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Program =>
  new Program(process.execPath, [ckptBin, ...args], env, cwd);

/** Is a process still there (and not a zombie)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return procState(pid) !== 'Z' && procState(pid) !== undefined;
}

export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** One-line error, no stack trace. */
export function isOneLineError(stderr: string): boolean {
  const lines = stderr.trim().split('\n');
  // `ckpt: …`, or a usage error naming its command: `ckpt snapshots ls: …`.
  return lines.length === 1 && /^ckpt( [a-z]+){0,2}: /.test(lines[0]!) && !/\n\s+at /.test(stderr);
}

/** Waits until `ckpt ps` lists a job of that name (a `ckpt run` just started registers it soon after). */
export async function waitForListedJob(name: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await ckpt(['ps', '--json'], env);
    const listed = r.code === 0 && (JSON.parse(r.stdout) as { name: string }[] | { jobs: { name: string }[] });
    const jobs = Array.isArray(listed) ? listed : listed ? listed.jobs : [];
    if (jobs.some((j) => j.name === name)) return;
    if (Date.now() > deadline) throw new Error(`job ${name} was never listed by ckpt ps`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `file` holds a line matching `re` after offset `from` (polls the file; bounded). */
export async function waitForLine(file: string, re: RegExp, from = 0, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8').slice(from);
    } catch {
      // not there yet
    }
    const hit = text.split('\n').find((l) => re.test(l));
    if (hit !== undefined) return hit;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in ${file}: ${text.slice(-300)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- jobs launched in the test's process ----

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

/** Polls `holds` until it is true (bounded); false if it never was. */
export async function eventually(holds: () => boolean, timeoutMs = 30_000, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!holds()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

/** Asserts that no process of the job is left (killed ones are torn down by the kernel: looks for up to 10 s). */
export async function assertNoneLeft(name: string, value: string): Promise<void> {
  if (await eventually(() => processesWithEnv(name, value).length === 0, 10_000, 50)) return;
  const what = processesWithEnv(name, value).map((p) => {
    try {
      return `${p}:${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`;
    } catch {
      return String(p);
    }
  });
  assert.fail(`processes left behind with ${name}=${value}: ${what.join('; ')}`);
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

export const uniqueMark = (): string => `m${process.pid}x${Math.random().toString(36).slice(2)}`;

export interface Ran {
  job: Job;
  result: JobResult;
  /** Lines per rank and stream. */
  stdout: string[][];
  stderr: string[][];
  results: Map<number, any>;
}

/** Launches a node fixture of test/fixtures/runtime as a job, collects its output, waits, and checks nothing is left. */
export async function runJob(
  name: string,
  size: number,
  options: Partial<LaunchOptions> & { argv?: string[]; whileRunning?: (job: Job) => Promise<void> | void } = {},
): Promise<Ran> {
  const { argv = [], whileRunning, ...rest } = options;
  const job = await launchJob({ command: process.execPath, args: [fixture(`runtime/${name}`), ...argv], size, output: { mode: 'events' }, ...rest });
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

/** Resolves when ranks of `job` have printed `count` lines matching `re` (bounded: fails after 30 s). */
export function waitForJobLine(job: Job, re: RegExp, count = 1): Promise<void> {
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

/** Resolves once the job's ranks have all joined (at once if they have). */
export const jobReady = (job: Job): Promise<void> => new Promise<void>((r) => (job.isReady ? r() : job.once('ready', () => r())));

// ---- fault points (src/util/faults.ts; docs/TESTING.md) ----

/** The environment that sets CKPT_FAULT, with a fresh CKPT_FAULT_DIR for its gates. */
export function faultEnv(t: TestContext, spec: string): { CKPT_FAULT: string; CKPT_FAULT_DIR: string } {
  return { CKPT_FAULT: spec, CKPT_FAULT_DIR: tempDir(t, 'ckpt-fault-') };
}

/**
 * A `gate` fault point: `reached()` waits until the process `who` stands at `point`
 * (its marker file exists) and returns that process's pid; `open()` lets it go on.
 */
export function gate(dir: string, point: FaultPoint, who: FaultActor) {
  const marker = join(dir, `${point}.${who}`);
  const pid = (): number => {
    try {
      return Number(readFileSync(marker, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  };
  return {
    async reached(timeoutMs = 60_000): Promise<number> {
      // The marker holds the pid once written (it may exist a moment before that).
      assert.ok(await eventually(() => pid() > 0, timeoutMs), `nobody reached the fault point ${point} as ${who}`);
      return pid();
    },
    open: (): void => rmSync(marker, { force: true }),
  };
}
