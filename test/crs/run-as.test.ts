// Root starting another user's program (`ckpt restart --trust-owner`, src/crs/run-as.ts):
// with the group of the user's account, not one a file carries; in a working directory
// entered as the user, never one only root can reach; in a session of its own, with no
// descriptor of root's terminal; with none of root's secrets. Run as root against the
// tests' non-root user.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptBin, eventually, isOneLineError, needRoot, type Result, tempDir, testUser, userDir } from '../helpers.js';
import { draft, giveTo, snapshotIn } from '../helpers/snapshots.js';

function assertCoded(r: Result, code: string): void {
  assert.notEqual(r.code, 0, `non-zero exit; stdout ${r.stdout} stderr ${r.stderr}`);
  assert.ok(isOneLineError(r.stderr), `one-line error: ${JSON.stringify(r.stderr)}`);
  assert.ok(r.stderr.trim().endsWith(`[${code}]`), `code ${code} in: ${r.stderr}`);
}

/** A snapshot of `/bin/sh -c SCRIPT` (given the user's home) in `cwd` (default: that home), given to the test user. */
async function usersProgram(t: TestContext, script: (home: string) => string, cwd?: string) {
  const user = testUser();
  const home = userDir(t, user);
  const store = await snapshotIn(home, draft(['/bin/sh', '-c', script(home)], cwd ?? home));
  giveTo(store, user);
  return { user, home, store };
}

/** An empty file in a fresh directory that the test user's program may write (its report to the test). */
function sharedFile(t: TestContext, name: string): string {
  const dir = tempDir(t);
  execFileSync('chmod', ['0755', dir]);
  const file = join(dir, name);
  writeFileSync(file, '');
  execFileSync('chmod', ['0666', file]);
  return file;
}

/** `ckpt restart STORE --trust-owner` on a terminal of its own (script(1)), as from an operator's shell: its exit status and output. */
async function restartOnTerminal(store: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  const child = spawn('script', ['-qec', `${process.execPath} ${ckptBin} restart ${store} --trust-owner`, '/dev/null'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.resume();
  const code = await new Promise<number | null>((r) => child.once('close', r));
  return { code, out };
}

test("its group is its account's, not the one its files carry (a setgid directory gives any)", async (t) => {
  if (!needRoot(t)) return;
  const { user, home, store } = await usersProgram(t, (home) => `id -G > ${home}/groups`);
  // What a setgid directory of group adm (4) would have given the user's files.
  execFileSync('chgrp', ['-R', 'adm', store]);
  const r = await ckpt(['restart', store, '--trust-owner']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readFileSync(join(home, 'groups'), 'utf8').trim().split(' '), [String(user.gid)]);
});

test('a working directory only root can reach is never entered for the user: one coded line, nothing runs', async (t) => {
  if (!needRoot(t)) return;
  const closed = join(tempDir(t), 'root-only');
  mkdirSync(join(closed, 'open'), { recursive: true });
  execFileSync('chmod', ['0700', closed]);
  execFileSync('chmod', ['0755', join(closed, 'open')]);
  const marker = join(closed, 'open', 'ran');
  const { store } = await usersProgram(t, () => `touch ${marker}`, join(closed, 'open'));
  const r = await ckpt(['restart', store, '--trust-owner']);
  assertCoded(r, 'ECKPT_CWD_MISSING');
  assert.match(r.stderr, /cannot enter it/);
  assert.ok(!existsSync(marker), 'nothing ran');
});

test("on root's terminal: the program gets its own session, no descriptor of the terminal, none of root's secrets; its output comes through", async (t) => {
  if (!needRoot(t)) return;
  const report = sharedFile(t, 'report');
  const script = [
    // /dev/tty opens only in a session with a controlling terminal (the one TIOCSTI could type into).
    `( : </dev/tty ) 2>/dev/null && echo ctty >> ${report} || echo no-ctty >> ${report}`,
    `{ [ -t 0 ] || [ -t 1 ] || [ -t 2 ]; } && echo tty-fd >> ${report} || echo no-tty-fd >> ${report}`,
    `env | grep -E '^(SLURM_JWT|PMIX_SECURITY_CRED|SLURM_JOB_ID)=' | sort >> ${report}`,
    'echo out-of-the-program',
  ].join('; ');
  const { store } = await usersProgram(t, () => script);
  const { code, out } = await restartOnTerminal(store, { SLURM_JWT: 'root-token', PMIX_SECURITY_CRED: 'root-cred', SLURM_JOB_ID: '4242' });
  assert.equal(code, 0, out);
  assert.deepEqual(readFileSync(report, 'utf8').trim().split('\n'), ['no-ctty', 'no-tty-fd', 'SLURM_JOB_ID=4242']);
  assert.match(out, /out-of-the-program/);
});

test('--detach --log through a link planted where the log goes: refused, nothing written', async (t) => {
  if (!needRoot(t)) return;
  const { home, store } = await usersProgram(t, (home) => `echo written > ${home}/ran`);
  // Detached without a log: its output goes to /dev/null, and it runs.
  const detached = await ckpt(['restart', store, '--trust-owner', '--detach']);
  assert.equal(detached.code, 0, detached.stderr);
  assert.ok(await eventually(() => existsSync(join(home, 'ran')), 30_000, 20), 'the detached program ran');
  const target = join(tempDir(t), 'root-file');
  writeFileSync(target, 'root only\n', { mode: 0o600 });
  const log = join(home, '..', 'program.log');
  symlinkSync(target, log);
  assertCoded(await ckpt(['restart', store, '--trust-owner', '--detach', '--log', log]), 'ECKPT_USAGE');
  assert.equal(readFileSync(target, 'utf8'), 'root only\n');
  // A link of theirs higher up the path: not followed either.
  const user = testUser();
  const rootOnly = tempDir(t);
  const logs = join(home, '..', 'logs');
  symlinkSync(rootOnly, logs);
  execFileSync('chown', ['-h', `${user.uid}:${user.gid}`, logs]);
  const r = await ckpt(['restart', store, '--trust-owner', '--detach', '--log', join(logs, 'program.log')]);
  assertCoded(r, 'ECKPT_PERMISSION');
  assert.match(r.stderr, /belongs to uid \d+: not followed/);
  assert.deepEqual(readdirSync(rootOnly), []);
});

test("on root's terminal, a program that leaves a child holding its output: ckpt restart ends with the program, its status passed on", { timeout: 120_000 }, async (t) => {
  if (!needRoot(t)) return;
  const bg = sharedFile(t, 'bg');
  const { store } = await usersProgram(t, () => `sleep 100000 & echo $! > ${bg}; echo parent-done; exit 5`);
  const killBackground = () => {
    const pid = existsSync(bg) ? Number(readFileSync(bg, 'utf8')) : 0;
    if (pid > 1) execFileSync('kill', ['-9', String(pid)]);
  };
  const { code, out } = await restartOnTerminal(store);
  killBackground();
  assert.equal(code, 5, out);
  assert.match(out, /parent-done/);
});

test("a descriptor root was started with (a script's `200<file`) does not reach the user's program: /dev/null is in its place", async (t) => {
  if (!needRoot(t)) return;
  const secret = join(tempDir(t), 'root-only');
  writeFileSync(secret, 'not for the user\n', { mode: 0o600 });
  const report = sharedFile(t, 'report');
  const { store } = await usersProgram(t, () => `readlink /proc/self/fd/200 > ${report} 2>&1; true`);
  const fd = openSync(secret, 'r+');
  t.after(() => closeSync(fd));
  // ckpt inherits the file as its descriptor 200, as from `ckpt restart … 200<>f` in a root shell.
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe', ...Array<'ignore'>(198).fill('ignore')];
  stdio[200] = fd;
  const child = spawn(process.execPath, [ckptBin, 'restart', store, '--trust-owner'], { stdio });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.resume();
  const code = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(code, 0, err);
  // Before: the root-only file itself, open for reading and writing.
  assert.equal(readFileSync(report, 'utf8').trim(), '/dev/null');
});
