// A process whose stdout is a regular file (`prog > out.log`, a scheduler's
// slurm-%j.out) keeps being restorable after that file has grown: the restore
// appends at its current end, or sends the output where --stdout says.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, ckpt, fixture, isOneLineError, needCriu, Program, tempDir, waitForLine } from '../helpers.js';

const tick = (line: string): number => Number(/^tick (\d+)$/.exec(line)?.[1] ?? NaN);
const lastTick = (text: string): number => tick(text.trim().split('\n').filter((l) => l.startsWith('tick ')).at(-1) ?? '');

/** The shell ticker with its stdout and stderr sent to `log` by `redirect` (`>`, `1<>`…), leading its own session. */
function startLogged(t: TestContext, log: string, redirect = '>'): Program {
  const p = new Program('/bin/sh', ['-c', `exec "$0" 1000000 ${redirect}"$1" 2>&1`, fixture('process/ticker.sh'), log], {}, { session: true });
  t.after(() => p.kill());
  return p;
}

function killPid(pid: number): void {
  if (pid > 1 && alive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
  }
}

test('stdout to a file that grew after the dump: the restore appends at its current end', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const log = join(dir, 'out.log');
  const store = join(dir, 'store');
  const program = startLogged(t, log);
  await waitForLine(log, /^tick 5$/);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(store, '000001', 'manifest.json'), 'utf8'));
  const files = manifest.process.files as { path: string; fds: number[]; append: boolean }[];
  assert.ok(files.some((f) => f.path === log && f.fds.includes(1) && !f.append), JSON.stringify(files));
  // The original runs on after its checkpoint and writes on, as under a scheduler.
  const atDump = lastTick(readFileSync(log, 'utf8'));
  await waitForLine(log, new RegExp(`^tick ${atDump + 5}$`));
  await program.kill();
  appendFileSync(log, 'MARK\n');
  const before = readFileSync(log, 'utf8');

  const restarted = await ckpt(['restart', store, '--detach', '--json']);
  assert.equal(restarted.code, 0, restarted.stderr);
  const pid = JSON.parse(restarted.stdout).pid as number;
  t.after(() => killPid(pid));
  assert.equal(pid, program.pid);
  await waitForLine(log, /^tick \d+$/, before.length);
  const after = readFileSync(log, 'utf8');
  assert.ok(after.startsWith(before), 'what the file held is kept');
  const resumed = after.slice(before.length).split('\n').filter((l) => l.startsWith('tick '));
  const first = tick(resumed[0]!);
  assert.ok(first > 5 && first <= atDump + 2, `the restored process goes on from its checkpoint (${first}, dump at ${atDump})`);
  killPid(pid);
});

test('--stdout sends the restored output elsewhere; the old file is left alone', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const log = join(dir, 'out.log');
  const other = join(dir, 'other.log');
  const store = join(dir, 'store');
  const program = startLogged(t, log);
  await waitForLine(log, /^tick 3$/);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill']);
  assert.equal(r.code, 0, r.stderr);
  await program.exited;
  appendFileSync(log, 'MARK\n');
  const before = readFileSync(log, 'utf8');
  const atDump = lastTick(before);

  const restarted = await ckpt(['restart', store, '--detach', '--stdout', other, '--json']);
  assert.equal(restarted.code, 0, restarted.stderr);
  const pid = JSON.parse(restarted.stdout).pid as number;
  t.after(() => killPid(pid));
  const line = await waitForLine(other, new RegExp(`^tick ${atDump + 3}$`));
  assert.ok(line);
  assert.equal(tick(readFileSync(other, 'utf8').split('\n')[0]!), atDump + 1, 'nothing lost, nothing repeated');
  assert.equal(readFileSync(log, 'utf8'), before, 'the old log is not written');
  killPid(pid);
});

test('a file opened read-write that grew: one coded line naming the file and the fix', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const log = join(dir, 'rw.log');
  const store = join(dir, 'store');
  const program = startLogged(t, log, '1<>');
  await waitForLine(log, /^tick 3$/);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill']);
  assert.equal(r.code, 0, r.stderr);
  await program.exited;
  appendFileSync(log, 'MARK\n');
  const restarted = await ckpt(['restart', store, '--detach']);
  assert.notEqual(restarted.code, 0);
  assert.ok(isOneLineError(restarted.stderr), restarted.stderr);
  assert.match(restarted.stderr, /ECKPT_FILE_CHANGED/);
  assert.ok(restarted.stderr.includes(log), restarted.stderr);
  assert.match(restarted.stderr, /truncate -s \d+/);
});

test('--stdout goes with a criu process snapshot only; an empty name is refused', async (t) => {
  const dir = tempDir(t);
  const r = await ckpt(['restart', join(dir, 'nothing'), '--stdout', '']);
  assert.notEqual(r.code, 0);
  assert.ok(isOneLineError(r.stderr), r.stderr);
  assert.match(r.stderr, /ECKPT_USAGE/);
});

test('a file that did not change is CRIU\'s to reopen: the output goes on right after the dump', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const log = join(dir, 'out.log');
  const store = join(dir, 'store');
  const program = startLogged(t, log);
  await waitForLine(log, /^tick 3$/);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill']);
  assert.equal(r.code, 0, r.stderr);
  await program.exited;
  const before = readFileSync(log, 'utf8');
  const atDump = lastTick(before);
  const restarted = await ckpt(['restart', store, '--detach', '--json']);
  assert.equal(restarted.code, 0, restarted.stderr);
  const pid = JSON.parse(restarted.stdout).pid as number;
  t.after(() => killPid(pid));
  await waitForLine(log, new RegExp(`^tick ${atDump + 2}$`), before.length);
  const after = readFileSync(log, 'utf8');
  assert.ok(after.startsWith(before));
  assert.equal(after.slice(before.length).split('\n')[0], `tick ${atDump + 1}`, 'nothing lost, nothing repeated');
  killPid(pid);
});
