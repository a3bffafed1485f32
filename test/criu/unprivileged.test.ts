// Transparent checkpoints by a user other than root: `ckpt setup criu --for-users
// GROUP` gives the members of GROUP a CRIU with file capabilities; they then
// checkpoint and restart their own processes (and criu jobs) through CRIU's
// unprivileged mode, and nobody else's.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { alive, ckpt, fixture, isOneLineError, needCriu, procState, Program, runAsUser, testUser, userDir, userFixture, userInstall, waitForLine, type TestUser } from '../helpers.js';
import { missingUserCaps, parseGetcap } from '../../dist/criu/locate/caps.js';
import { forUsersCriuPath } from '../../dist/criu/locate/paths.js';
import { ownerUid } from '../../dist/util/procfs.js';

let prepared: Promise<void> | undefined;
/** The for-users CRIU for the test user's own group (as root, once). */
function prepare(user: TestUser): Promise<void> {
  prepared ??= (async () => {
    const r = await ckpt(['setup', 'criu', '--for-users', String(user.gid), '--json'], {}, 600_000);
    assert.equal(r.code, 0, r.stderr);
  })();
  return prepared;
}

async function setup(t: TestContext): Promise<{ user: TestUser; home: string; bin: string } | undefined> {
  if (!(await needCriu(t))) return undefined;
  const user = testUser();
  await prepare(user);
  return { user, home: userDir(t, user), bin: userInstall() };
}

/** `ckpt ARGS` as the test user, with its own HOME (its state, logs, job registry). */
const asUser = (s: { user: TestUser; home: string; bin: string }, args: string[], timeoutMs = 120_000) =>
  runAsUser(s.user, process.execPath, [s.bin, ...args], { HOME: s.home, CKPT_HOME: '', CKPT_CRIU: '' }, timeoutMs);

const lastTick = (text: string): number => Number(/tick (\d+)\s*$/.exec(text.trim().split('\n').filter((l) => l.startsWith('tick ')).at(-1) ?? '')?.[1] ?? NaN);

/** The shell ticker, run by `uid`/`gid` in a session of its own, writing to `log`. */
function tickerAs(t: TestContext, ids: { uid: number; gid: number }, log: string, ticks = 1_000_000): ChildProcess {
  const child = spawn('/bin/sh', ['-c', `exec "$0" ${ticks} >"$1" 2>&1`, userFixture('process/ticker.sh'), log], {
    uid: ids.uid,
    gid: ids.gid,
    stdio: 'ignore',
    detached: true,
    cwd: '/',
  });
  child.on('error', () => {});
  t.after(() => killTree(child.pid!));
  return child;
}

function killTree(pid: number): void {
  if (!(pid > 1)) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

test('getcap output: the capabilities in both e and p, and what a user CRIU lacks', () => {
  assert.deepEqual(parseGetcap('/x/criu cap_setpcap,cap_checkpoint_restore=eip\n'), ['cap_setpcap', 'cap_checkpoint_restore']);
  assert.deepEqual(parseGetcap('/x/criu cap_checkpoint_restore+ep cap_setpcap+p\n'), ['cap_checkpoint_restore']);
  assert.deepEqual(parseGetcap(''), []);
  assert.deepEqual(missingUserCaps(['cap_checkpoint_restore']), ['cap_setpcap']);
  assert.deepEqual(missingUserCaps([]), ['cap_checkpoint_restore', 'cap_setpcap']);
  assert.deepEqual(missingUserCaps(['cap_setpcap', 'cap_checkpoint_restore']), []);
});

test('setup --for-users: root:GROUP 0750 with file capabilities; the user\'s doctor finds it', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const path = forUsersCriuPath();
  const { statSync } = await import('node:fs');
  const st = statSync(path);
  assert.equal(st.uid, 0);
  assert.equal(st.gid, s.user.gid);
  assert.equal(st.mode & 0o7777, 0o750);
  const r = await asUser(s, ['doctor', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const criu = JSON.parse(r.stdout).checkpointers.find((c: { name: string }) => c.name === 'criu');
  assert.equal(criu.ok, true, JSON.stringify(criu));
  assert.equal(criu.details.source, 'for-users');
  assert.equal(criu.details.unprivileged, true);
});

test('the user\'s doctor names exactly the capability a CRIU lacks', async (t) => {
  const s = await setup(t);
  if (!s) return;
  // A copy with cap_checkpoint_restore only: dumps work, restores would not here.
  const dir = dirname(s.home);
  const partial = join(dir, 'criu-partial');
  const { copyFileSync, realpathSync } = await import('node:fs');
  copyFileSync(realpathSync(forUsersCriuPath()), partial);
  chmodSync(partial, 0o755);
  const { execFileSync } = await import('node:child_process');
  execFileSync('setcap', ['cap_checkpoint_restore+eip', partial]);
  const r = await runAsUser(s.user, process.execPath, [s.bin, 'doctor'], { HOME: s.home, CKPT_CRIU: partial });
  assert.match(r.stdout, /lacks the file capability cap_setpcap/);
  assert.match(r.stdout, new RegExp(`setcap cap_checkpoint_restore,cap_setpcap\\+eip ${partial}`));
  // The user's own process: refused before anything is touched, saying what is missing.
  const log = join(s.home, 'out.log');
  const child = tickerAs(t, s.user, log);
  await waitForLine(log, /^tick 2$/);
  const store = join(s.home, 'x');
  const c = await runAsUser(s.user, process.execPath, [s.bin, 'checkpoint', '--pid', String(child.pid), '--dir', store], { HOME: s.home, CKPT_CRIU: partial });
  assert.notEqual(c.code, 0);
  assert.ok(isOneLineError(c.stderr), c.stderr);
  assert.match(c.stderr, /cap_setpcap/);
  assert.ok(alive(child.pid!) && procState(child.pid!) !== 'T', 'left running');
  assert.ok(!existsSync(store), 'no store made');
});

for (const mode of ['continue', 'kill', 'stop'] as const) {
  test(`a user checkpoints their own process (${mode}) and restarts it`, async (t) => {
    const s = await setup(t);
    if (!s) return;
    const log = join(s.home, 'out.log');
    const store = join(s.home, 'store');
    const child = tickerAs(t, s.user, log, mode === 'kill' ? 150 : 1_000_000);
    const pid = child.pid!;
    await waitForLine(log, /^tick 5$/);
    const flag = mode === 'continue' ? [] : mode === 'kill' ? ['--kill'] : ['--stop'];
    const r = await asUser(s, ['checkpoint', '--pid', String(pid), '--dir', store, ...flag, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.crs.name, 'criu');
    if (mode === 'stop') {
      assert.equal(procState(pid), 'T', 'left stopped');
      const atStop = readFileSync(log, 'utf8').length;
      const resumed = await asUser(s, ['resume', String(pid)]);
      assert.equal(resumed.code, 0, resumed.stderr);
      await waitForLine(log, /^tick \d+$/, atStop);
    }
    if (mode === 'kill') {
      await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
      // Foreground restart: it runs to its end and ckpt exits with its status.
      const before = readFileSync(log, 'utf8');
      const restarted = await asUser(s, ['restart', store]);
      assert.equal(restarted.code, 3, restarted.stderr);
      const after = readFileSync(log, 'utf8');
      assert.ok(after.startsWith(before));
      const ticks = after.slice(before.length).split('\n').filter((l) => l.startsWith('tick ')).map((l) => Number(l.slice(5)));
      assert.equal(ticks[0], lastTick(before) + 1, 'nothing lost, nothing repeated');
      assert.equal(ticks.at(-1), 150);
      return;
    }
    killTree(pid);
    await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    const size = readFileSync(log, 'utf8').length;
    const restarted = await asUser(s, ['restart', store, '--detach', '--json']);
    assert.equal(restarted.code, 0, restarted.stderr);
    const back = JSON.parse(restarted.stdout).pid as number;
    t.after(() => killTree(back));
    assert.equal(back, pid);
    assert.equal(ownerUid(back), s.user.uid, 'the restored process is the user\'s');
    await waitForLine(log, /^tick \d+$/, size);
    killTree(back);
  });
}

test('a user checkpoints and restarts a 2-rank criu job', async (t) => {
  const s = await setup(t);
  if (!s) return;
  // The rank program next to the installed copy: it imports 'ckpt' from there.
  const rankProgram = join(dirname(dirname(s.bin)), 'ticker-rank.mjs');
  if (!existsSync(rankProgram)) {
    writeFileSync(rankProgram, readFileSync(fixture('jobs/ticker.mjs')));
    chmodSync(rankProgram, 0o644);
  }
  const store = join(s.home, 'jobs');
  const name = `u${process.pid}`;
  const env = { ...process.env, HOME: s.home, CKPT_HOME: '', CKPT_CRIU: '' };
  const run = spawn(process.execPath, [s.bin, 'run', '-n', '2', '--crs', 'criu', '--name', name, '--dir', store, '--', process.execPath, rankProgram], {
    uid: s.user.uid,
    gid: s.user.gid,
    env,
    cwd: '/',
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => killTree(run.pid!));
  let text = '';
  run.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  run.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
  const runExit = new Promise<number | null>((resolve) => run.on('close', (c) => resolve(c)));
  const deadline = Date.now() + 30_000;
  while ((text.match(/ready \d+ \d+/g) ?? []).length < 2) {
    if (Date.now() > deadline || run.exitCode !== null) throw new Error(`ranks not ready: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const pids = [...text.matchAll(/ready \d+ (\d+)/g)].map((m) => Number(m[1]));
  const c = await asUser(s, ['checkpoint', name, '--term', '--json']);
  assert.equal(c.code, 0, c.stderr);
  await runExit;
  const restart = spawn(process.execPath, [s.bin, 'restart', store], { uid: s.user.uid, gid: s.user.gid, env, cwd: '/', detached: true, stdio: 'ignore' });
  t.after(() => killTree(restart.pid!));
  const restartExit = new Promise<number | null>((resolve) => restart.on('close', (code) => resolve(code)));
  // The ranks come back with their pids, as the user's processes.
  const until = Date.now() + 30_000;
  while (!pids.every((p) => alive(p) && ownerUid(p) === s.user.uid)) {
    if (Date.now() > until || restart.exitCode !== null) throw new Error(`ranks not restored (${pids.join(',')})`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ps = await asUser(s, ['ps', '--json']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, new RegExp(name));
  const k = await asUser(s, ['kill', name]);
  assert.equal(k.code, 0, k.stderr);
  await restartExit;
});

test('a user cannot checkpoint root\'s process or another user\'s: one coded line, nothing touched', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const rootProgram = new Program('/bin/sh', ['-c', 'echo up; exec sleep 1000'], {}, { session: true });
  t.after(() => rootProgram.kill());
  await rootProgram.waitFor(/^up$/);
  const otherDir = join(dirname(s.home), 'nobody');
  const { execFileSync } = await import('node:child_process');
  execFileSync('install', ['-d', '-m', '0700', '-o', '65534', '-g', '65534', otherDir]);
  const otherLog = join(otherDir, 'other.log');
  const other = tickerAs(t, { uid: 65534, gid: 65534 }, otherLog);
  await waitForLine(otherLog, /^tick 2$/);
  for (const pid of [rootProgram.pid, other.pid!]) {
    const store = join(s.home, `store-${pid}`);
    const r = await asUser(s, ['checkpoint', '--pid', String(pid), '--dir', store, '--kill']);
    assert.notEqual(r.code, 0);
    assert.ok(isOneLineError(r.stderr), r.stderr);
    assert.match(r.stderr, /ECKPT_NOT_OWNER/);
    assert.ok(alive(pid), 'still running');
    assert.notEqual(procState(pid), 'T', 'not left stopped');
    assert.ok(!existsSync(store), 'no store made');
  }
});

test('a user outside the group hears that, and from whom to ask', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const nobody = { name: 'nobody', uid: 65534, gid: 65534 };
  const r = await runAsUser(nobody, process.execPath, [s.bin, 'doctor', '--json'], { HOME: '/nonexistent', CKPT_HOME: '', CKPT_CRIU: '' });
  assert.equal(r.code, 0, r.stderr);
  const criu = JSON.parse(r.stdout).checkpointers.find((c: { name: string }) => c.name === 'criu');
  assert.equal(criu.ok, false);
  assert.match(criu.reason, new RegExp(`${forUsersCriuPath()} is CRIU for the members of group \\S+, and you are not one of them`));
  assert.match(criu.hint, /add you to group/);
});
