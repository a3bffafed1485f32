// Shared test helpers: run the real `ckpt` executable, real programs, real CRIU.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { findCriu } from '../dist/criu/locate/find.js';

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

/** Runs `ckpt ARGS` to completion without blocking the test's event loop. */
export async function ckpt(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<Result> {
  const child = spawn(process.execPath, [ckptBin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
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
  return lines.length === 1 && lines[0]!.startsWith('ckpt: ') && !/\n\s+at /.test(stderr);
}

// ---- another user ----

/** The tests' own non-root user, created once (as root) if missing. */
export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

export const TEST_USER = 'ckpt-test';

export function testUser(): TestUser {
  const id = (flag: string) => Number(execFileSync('id', [flag, TEST_USER], { encoding: 'utf8' }).trim());
  try {
    return { name: TEST_USER, uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', TEST_USER]);
    return { name: TEST_USER, uid: id('-u'), gid: id('-g') };
  }
}

let installed: string | undefined;
/**
 * ckpt copied where any user can run it (the checkout may sit in a 0700 directory):
 * dist/, bin/, the native addons and the runtime dependencies. Returns its bin/ckpt.
 */
export function userInstall(): string {
  if (installed) return installed;
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-user-install-'));
  for (const part of ['dist', 'bin', 'package.json', 'build', join('node_modules', '@bufbuild'), join('node_modules', 'xxhash-wasm')]) {
    execFileSync('mkdir', ['-p', join(dir, part, '..')]);
    execFileSync('cp', ['-a', join(root, part), join(dir, part)]);
  }
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  installed = join(dir, 'bin', 'ckpt');
  return installed;
}

/** A directory the test user owns (0700), inside a 0755 one root owns; removed after the test. */
export function userDir(t: TestContext, user: TestUser): string {
  const base = tempDir(t, 'ckpt-user-');
  execFileSync('chmod', ['0755', base]);
  const dir = join(base, 'home');
  execFileSync('install', ['-d', '-m', '0700', '-o', String(user.uid), '-g', String(user.gid), dir]);
  return dir;
}

/** Runs a command as the test user (no supplementary groups), collecting its output. */
export async function runAsUser(user: TestUser, command: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Result> {
  const child = spawn(command, args, { uid: user.uid, gid: user.gid, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd: '/' });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
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
