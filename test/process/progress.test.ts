// Progress of a checkpoint from outside (issue #15) and its commit overlapped with
// the dump (issue #16): bytes reported while CRIU is not done (held at the `written`
// fault point, in post-dump), a snapshot that verifies and restores, and the one
// final line the CLI prints when not on a terminal, for a process and for a job.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointProcess, verifySnapshot, type WriteProgress } from '../../dist/index.js';
import { ckpt, ckptProgram, eventually, faultEnv, fixture, gate, needCriu, Program, tempDir, waitForListedJob } from '../helpers.js';

const MB = 24;

function memhold(t: TestContext): { program: Program; stop: string } {
  const dir = tempDir(t, 'ckpt-memhold-');
  const exe = join(dir, 'memhold');
  execFileSync('gcc', ['-O2', '-o', exe, fixture('process/memhold.c')]);
  const stop = join(dir, 'STOP');
  const program = new Program(exe, [String(MB), stop], {}, { session: true });
  t.after(() => program.kill());
  return { program, stop };
}

test('progress with bytes arrives while the dump is held; the overlapped commit verifies and restores', async (t) => {
  if (!(await needCriu(t))) return;
  const { program, stop } = memhold(t);
  await program.waitFor(/^ready$/);
  const store = join(tempDir(t), 'store');
  const fault = faultEnv(t, 'written:coord:gate');
  Object.assign(process.env, fault, { CKPT_COMMIT_OVERLAP: '1' });
  t.after(() => {
    delete process.env.CKPT_FAULT;
    delete process.env.CKPT_FAULT_DIR;
    delete process.env.CKPT_COMMIT_OVERLAP;
  });
  const events: WriteProgress[] = [];
  let finished = false;
  const done = checkpointProcess({ pid: program.pid, dir: store, then: 'terminate', onProgress: (_m, p) => p && events.push(p) }).finally(() => (finished = true));
  const held = gate(fault.CKPT_FAULT_DIR, 'written', 'coord');
  await held.reached();
  assert.ok(await eventually(() => events.some((e) => e.bytes > 0)), 'a progress event with bytes while CRIU waits in post-dump');
  assert.equal(finished, false);
  held.open();
  const snapshot = await done;
  assert.ok(snapshot.bytes > MB << 20, `${snapshot.bytes} bytes`);
  assert.ok(snapshot.durationMs >= 0 && snapshot.bytesPerSecond > 0 && snapshot.frozenMs !== undefined);
  const e = events.find((x) => x.bytes > 0)!;
  assert.ok(e.expectedBytes !== undefined && e.expectedBytes >= MB << 20, 'the size was estimated from the resident memory');
  const v = await verifySnapshot(snapshot);
  assert.ok(v.ok, JSON.stringify(v.problems));
  await program.exited;
  const restarted = ckptProgram(['restart', store]);
  t.after(() => restarted.kill());
  writeFileSync(stop, '');
  const exit = await restarted.exited;
  assert.equal(exit.code, 0, restarted.stderr);
  assert.equal(restarted.lines.at(-1), 'done');
});

test('CLI, not on a terminal: a process checkpoint prints one final line with size, time, rate and frozen time', async (t) => {
  if (!(await needCriu(t))) return;
  const { program } = memhold(t);
  await program.waitFor(/^ready$/);
  const store = join(tempDir(t), 'store');
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no progress when not on a terminal');
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  assert.match(lines[0]!, new RegExp(`^checkpointed pid ${program.pid} into \\S+ \\(seq 1, criu [\\d.]+\\): [\\d.]+ MB in [\\d.]+ m?s, [\\d.]+ [kMG]?B/s, frozen [\\d.]+ m?s; process killed$`));
});

test('CLI, not on a terminal: a job checkpoint prints one final line with its size; --json has the figures', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const stopFile = join(dir, 'STOP');
  const env = { CKPT_STATE_DIR: join(dir, 'state'), STOP_FILE: stopFile, MARK_DIR: dir };
  const name = `p${process.pid}`;
  const run = ckptProgram(['run', '-n', '2', '--crs', 'self', '--name', name, '--dir', store, '--', process.execPath, fixture('jobs/steady.mjs')], env);
  t.after(() => run.kill());
  await waitForListedJob(name, env);
  const r = await ckpt(['checkpoint', name], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  assert.match(lines[0]!, new RegExp(`^checkpointed job ${name} \\(2 ranks\\) into \\S+ \\(seq 1\\): [\\d.]+ [kMG]?B in [\\d.]+ m?s, [\\d.]+ [kMG]?B/s; the job continues$`));
  const j = await ckpt(['checkpoint', name, '--json'], env);
  assert.equal(j.code, 0, j.stderr);
  const out = JSON.parse(j.stdout);
  assert.ok(out.bytes > 0 && out.durationMs >= 0 && out.bytesPerSecond > 0 && 'frozenMs' in out, j.stdout);
  writeFileSync(stopFile, '');
  await run.exited;
});
