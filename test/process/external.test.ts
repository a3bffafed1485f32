// Unmodified C and shell programs checkpointed from outside in each end state —
// left running, left stopped, killed — and restored with `ckpt restart`.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, ckpt, ckptProgram, fixture, needCriu, procState, Program, tempDir, waitForLine } from '../helpers.js';

/** Never reached: each test ends its program with the stop file once it has seen enough. */
const TICKS = 1_000_000;

function buildTicker(t: TestContext): string {
  const dir = tempDir(t, 'ckpt-cc-');
  const exe = join(dir, 'ticker');
  execFileSync('gcc', ['-O2', '-o', exe, fixture('process/ticker.c')]);
  return exe;
}

const tickOf = (line: string | undefined): number => Number(/^tick (\d+)$/.exec(line ?? '')?.[1] ?? NaN);
const lastTick = (lines: string[]): number => tickOf(lines.filter((l) => l.startsWith('tick')).at(-1));

/**
 * Restarts the store in the foreground, lets it print a few ticks, ends it through its
 * stop file and checks the ticks went on without a gap to its end.
 */
async function restartAndFinish(store: string, stop: string, expectedExit: number): Promise<number> {
  const restarted = ckptProgram(['restart', store]);
  const first = tickOf(await restarted.waitFor(/^tick \d+$/, 60_000));
  await restarted.waitFor(new RegExp(`^tick ${first + 3}$`), 60_000);
  writeFileSync(stop, '');
  const exit = await restarted.exited;
  assert.equal(exit.code, expectedExit, `restart exit ${exit.code}: ${restarted.stderr}`);
  const ticks = restarted.lines.filter((l) => l.startsWith('tick')).map(tickOf);
  assert.ok(ticks.length > 0, `restart printed ticks: ${restarted.lines.join('|')}`);
  ticks.forEach((n, i) => assert.equal(n, ticks[0]! + i, 'ticks are consecutive'));
  assert.equal(restarted.lines.at(-1), 'done');
  return ticks[0]!;
}

for (const kind of ['c', 'shell'] as const) {
  const exitCode = kind === 'c' ? 7 : 3;
  const start = (t: TestContext) => {
    const stop = join(tempDir(t), 'stop');
    const args = [String(TICKS), stop];
    const program = kind === 'c' ? new Program(buildTicker(t), args, {}, { session: true }) : new Program(fixture('process/ticker.sh'), args, {}, { session: true });
    t.after(() => program.kill());
    return Object.assign(program, { stop });
  };

  test(`${kind}: --kill dumps, kills, and the restart goes on from the very next tick`, async (t) => {
    if (!(await needCriu(t))) return;
    const store = join(tempDir(t), 'store');
    const program = start(t);
    await program.waitFor(/^tick 10$/);
    const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.endState, 'terminate');
    assert.equal(out.crs.name, 'criu');
    const exit = await program.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const before = lastTick(program.lines);
    const first = await restartAndFinish(store, program.stop, exitCode);
    assert.equal(first, before + 1, 'nothing lost, nothing repeated');
  });

  test(`${kind}: --leave-running keeps it going; the snapshot restarts after it is gone`, async (t) => {
    if (!(await needCriu(t))) return;
    const store = join(tempDir(t), 'store');
    const program = start(t);
    await program.waitFor(/^tick 10$/);
    const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /left running/);
    const atDump = lastTick(program.lines);
    await program.waitFor(new RegExp(`^tick ${atDump + 5}$`));
    assert.ok(alive(program.pid));
    await program.kill();
    const first = await restartAndFinish(store, program.stop, exitCode);
    assert.ok(first > 10 && first <= atDump + 2, `restart resumes near the dump (${first}, dump at ${atDump})`);
  });

  test(`${kind}: --stop leaves it stopped until ckpt resume`, async (t) => {
    if (!(await needCriu(t))) return;
    const store = join(tempDir(t), 'store');
    const program = start(t);
    await program.waitFor(/^tick 10$/);
    const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--stop', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(procState(program.pid), 'T');
    const frozenAt = lastTick(program.lines);
    await sleep(200);
    assert.equal(lastTick(program.lines), frozenAt, 'a stopped process prints nothing');
    const resumed = await ckpt(['resume', String(program.pid)]);
    assert.equal(resumed.code, 0, resumed.stderr);
    await program.waitFor(new RegExp(`^tick ${frozenAt + 3}$`));
    await program.kill();
    const first = await restartAndFinish(store, program.stop, exitCode);
    assert.equal(first, frozenAt + 1);
  });
}

test('a detached restart returns at once and the process writes to its log', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const stop = join(dir, 'stop');
  const program = new Program(fixture('process/ticker.sh'), [String(TICKS), stop], {}, { session: true });
  t.after(() => program.kill());
  await program.waitFor(/^tick 5$/);
  assert.equal((await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill'])).code, 0);
  await program.exited;
  const log = join(dir, 'out.log');
  const r = await ckpt(['restart', store, '--detach', '--log', log, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const { pid } = JSON.parse(r.stdout);
  assert.ok(pid > 1);
  t.after(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  // It runs on its own, writing to the log: a few ticks, then it is told to end.
  const first = await waitForLine(log, /^tick \d+$/, 0, 60_000);
  await waitForLine(log, new RegExp(`^tick ${tickOf(first) + 2}$`), 0, 60_000);
  writeFileSync(stop, '');
  for (let i = 0; i < 1200 && alive(pid); i++) await sleep(50);
  assert.ok(!alive(pid), 'the detached process finished');
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.at(-1), 'done');
  assert.equal(lines[0], `tick ${lastTick(program.lines) + 1}`);
});
