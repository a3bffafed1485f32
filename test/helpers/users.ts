// Helpers for tests that run ckpt as another user (re-exported by test/helpers.ts,
// which every test imports): the tests' own non-root user, a copy of ckpt any user
// can run, a directory that user owns, and running a command as that user.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import type { Result } from '../helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

export const TEST_USER = 'ckpt-test';

/** The tests' own non-root user, created once (as root) if missing. */
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
 * dist/, bin/, the native addons, the runtime dependencies and the process fixtures.
 * Returns its bin/ckpt.
 */
export function userInstall(): string {
  if (installed) return installed;
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-user-install-'));
  for (const part of ['dist', 'bin', 'package.json', 'build', join('node_modules', '@bufbuild'), join('node_modules', 'xxhash-wasm'), join('test', 'fixtures', 'process')]) {
    execFileSync('mkdir', ['-p', join(dir, part, '..')]);
    execFileSync('cp', ['-a', join(root, part), join(dir, part)]);
  }
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  installed = join(dir, 'bin', 'ckpt');
  return installed;
}

/** A process fixture (`process/ticker.sh`) in that copy, which any user can run. */
export const userFixture = (name: string): string => join(userInstall(), '..', '..', 'test', 'fixtures', name);

/** A directory the test user owns (0700), inside a 0755 one root owns; removed after the test. */
export function userDir(t: TestContext, user: TestUser): string {
  const base = mkdtempSync(join(tmpdir(), 'ckpt-user-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
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

/** Whether the test runs as root; skips it (with the reason) if not: it plays root against another user. */
export function needRoot(t: TestContext): boolean {
  const root = process.geteuid?.() === 0;
  if (!root) t.skip('needs root (it plays root against another user)');
  return root;
}
