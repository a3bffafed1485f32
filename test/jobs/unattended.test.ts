// Jobs that run unattended (issue: preemption, time limits, failures): a checkpoint on
// the scheduler's signal ends the job with status 85; the same command line with
// --resume starts it the first time and resumes it after; a rank that dies brings the
// job back from its newest snapshot, --max-restarts times. Every phase is picked by
// waiting for what the job prints (each rank stops at a gate), never by a sleep.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, needCriu, Program, tempDir } from '../helpers.js';
import { program } from './exchange.js';

const ITERS = 400;
const GATE_AT = 150;
const EXIT_CHECKPOINTED = 85;

/** Until `count()` reaches `n` (a bounded poll of what the job printed so far). */
async function until(what: string, count: () => number, n: number, p: Program, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (count() < n) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`exited before ${what}: ${p.lines.join(' | ')} ${p.stderr}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${p.lines.join(' | ')} ${p.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const gatedLines = (p: Program) => p.lines.filter((l) => / gated /.test(l));
const stderrCount = (p: Program, re: RegExp) => (p.stderr.match(new RegExp(re, 'g')) ?? []).length;

function sums(p: Program): Map<number, string> {
  const out = new Map<number, string>();
  for (const l of p.lines) {
    const m = /^\[(\d+)\] rank \d+ checksum (\d+)$/.exec(l);
    if (m) out.set(Number(m[1]), m[2]!);
  }
  return out;
}

let baseline: Map<number, string> | undefined;
/** The checksums of an uninterrupted run of the same job. */
async function uninterrupted(): Promise<Map<number, string>> {
  if (baseline) return baseline;
  const p = ckptProgram(['run', '-n', '4', '--', process.execPath, program], { ITERS: String(ITERS) });
  assert.equal((await p.exited).code, 0, p.stderr);
  baseline = sums(p);
  assert.equal(baseline.size, 4);
  return baseline;
}

interface Setup {
  store: string;
  gate: string;
  line: (extra: string[]) => string[];
}

function setup(t: TestContext, crs: 'self' | 'criu'): Setup {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const gate = join(dir, 'gate');
  const name = `unattended-${crs}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  t.after(() => void ckpt(['kill', name]).catch(() => {}));
  return { store, gate, line: (extra) => ['run', '-n', '4', '--name', name, '--dir', store, '--crs', crs, ...extra, '--', process.execPath, program] };
}

function jobEnv(s: Setup, crs: 'self' | 'criu', extra: Record<string, string> = {}): Record<string, string> {
  return { ITERS: String(ITERS), GATE_AT: String(GATE_AT), GATE_FILE: s.gate, ...(crs === 'criu' ? { NO_SAFEPOINT: '1' } : {}), ...extra };
}

for (const crs of ['self', 'criu'] as const) {
  test(`${crs}: --checkpoint-signal USR1 checkpoints and ends the job with 85; the same line with --resume finishes it exactly`, async (t) => {
    if (crs === 'criu' && !(await needCriu(t))) return;
    const expected = await uninterrupted();
    const s = setup(t, crs);
    const line = s.line(['--resume', '--checkpoint-signal', 'USR1']);
    const first = ckptProgram(line, jobEnv(s, crs, { SLURM_JOB_ID: '111' }));
    t.after(() => first.kill());
    await until('every rank at the gate', () => gatedLines(first).length, 4, first);
    assert.match(first.stderr, /no snapshot in .* yet: starting the job/);
    first.child.kill('SIGUSR1');
    const ended = await first.exited;
    assert.equal(ended.code, EXIT_CHECKPOINTED, first.stderr);
    assert.match(first.stderr, /checkpointed into .*000001/);
    assert.deepEqual(readdirSync(s.store).filter((n) => /^\d+$/.test(n)), ['000001']);
    // The requeued run: the same line, a new job id in the environment.
    const again = ckptProgram(line, jobEnv(s, crs, { SLURM_JOB_ID: '222' }));
    t.after(() => again.kill());
    await until('the resume', () => stderrCount(again, /resuming job .* from snapshot 1/), 1, again);
    await until('the resumed ranks at the gate', () => gatedLines(again).length, crs === 'self' ? 4 : 0, again);
    // A self restart starts the ranks afresh: they see where they run now.
    if (crs === 'self') assert.ok(gatedLines(again).every((l) => l.endsWith(' gated 222')), gatedLines(again).join(' | '));
    writeFileSync(s.gate, '');
    const done = await again.exited;
    assert.equal(done.code, 0, again.stderr);
    assert.deepEqual(sums(again), expected);
  });
}

test('--resume with only an incomplete snapshot in the store starts afresh and says so', async (t) => {
  const s = setup(t, 'self');
  mkdirSync(join(s.store, `.partial-000001-abcd1234-${process.pid}@${execFileSync('hostname', { encoding: 'utf8' }).trim()}`), { recursive: true, mode: 0o700 });
  writeFileSync(s.gate, '');
  const p = ckptProgram(s.line(['--resume']), jobEnv(s, 'self'));
  assert.equal((await p.exited).code, 0, p.stderr);
  assert.match(p.stderr, /holds only an incomplete snapshot: starting the job afresh/);
  assert.deepEqual(sums(p), await uninterrupted());
});

/** Kills one rank of the running job (by the pids `ckpt ps` lists). */
async function killARank(name: string, rank: number): Promise<number> {
  const ps = JSON.parse((await ckpt(['ps', '--json'])).stdout).jobs as { name: string; pids: number[] }[];
  const pid = ps.find((j) => j.name === name)!.pids[rank]!;
  assert.ok(pid > 1);
  process.kill(pid, 'SIGKILL');
  return pid;
}

test('--max-restarts 3: a rank SIGKILLed three times, the job comes back from its newest snapshot and ends exactly; a fourth is the end', async (t) => {
  const expected = await uninterrupted();
  const s = setup(t, 'self');
  const p = ckptProgram(s.line(['--max-restarts', '3']), jobEnv(s, 'self'));
  t.after(() => p.kill());
  const name = s.line([])[4]!;
  await until('every rank at the gate', () => gatedLines(p).length, 4, p);
  // Before any snapshot: nothing to recover from is not a silent rerun (see the next test).
  for (let k = 1; k <= 3; k++) {
    const c = await ckpt(['checkpoint', name]);
    assert.equal(c.code, 0, c.stderr);
    await killARank(name, k % 4);
    await until(`restart ${k}`, () => stderrCount(p, /restarting from snapshot/), k, p);
    assert.match(p.stderr, new RegExp(`rank ${k % 4} was killed by SIGKILL; restarting from snapshot ${k} \\(restart ${k} of 3\\)`));
    await until(`the ranks at the gate after restart ${k}`, () => gatedLines(p).length, 4 * (k + 1), p);
  }
  writeFileSync(s.gate, '');
  assert.equal((await p.exited).code, 0, p.stderr);
  assert.deepEqual(sums(p), expected);

  // The same with --max-restarts 1: the second death ends it, with a clear line and a non-zero status.
  const s2 = setup(t, 'self');
  const q = ckptProgram(s2.line(['--max-restarts', '1']), jobEnv(s2, 'self'));
  t.after(() => q.kill());
  const name2 = s2.line([])[4]!;
  await until('every rank at the gate', () => gatedLines(q).length, 4, q);
  assert.equal((await ckpt(['checkpoint', name2])).code, 0);
  await killARank(name2, 2);
  await until('the restart', () => gatedLines(q).length, 8, q);
  await killARank(name2, 1);
  const end = await q.exited;
  assert.equal(end.code, 137, q.stderr);
  assert.match(q.stderr, /failed again after 1 restart: giving up/);
});

test('--max-restarts: a rank killed during a checkpoint, the job comes back from the previous snapshot and ends exactly', async (t) => {
  const expected = await uninterrupted();
  const s = setup(t, 'self');
  const mark = join(s.store, '..', 'saving');
  const p = ckptProgram(s.line(['--max-restarts', '1']), jobEnv(s, 'self', { BLOCK_SAVE_RANK: '2', BLOCK_SAVE_MARK: mark }));
  t.after(() => p.kill());
  const name = s.line([])[4]!;
  await until('every rank at the gate', () => gatedLines(p).length, 4, p);
  assert.equal((await ckpt(['checkpoint', name])).code, 0);
  // The second checkpoint: rank 2 hangs in its save(); killed there.
  const second = ckpt(['checkpoint', name]);
  await until('rank 2 in its save()', () => (existsSync(mark) ? 1 : 0), 1, p);
  await killARank(name, 2);
  assert.notEqual((await second).code, 0, 'the interrupted checkpoint failed');
  await until('the restart', () => stderrCount(p, /restarting from snapshot 1 \(restart 1 of 1\)/), 1, p);
  await until('the ranks at the gate after the restart', () => gatedLines(p).length, 8, p);
  assert.deepEqual(readdirSync(s.store).filter((n) => /^\d+$/.test(n)), ['000001'], 'no half-written snapshot listed');
  writeFileSync(s.gate, '');
  assert.equal((await p.exited).code, 0, p.stderr);
  assert.deepEqual(sums(p), expected);
});

test('SIGTERM during a checkpoint: it is let finish and committed, then the job ends with 143; nothing half-written is listed', async (t) => {
  const s = setup(t, 'self');
  const mark = join(s.store, '..', 'saving');
  // Rank 1's save() in the second checkpoint takes 2 s of its own: the SIGTERM arrives within it.
  const p = ckptProgram(s.line([]), jobEnv(s, 'self', { BLOCK_SAVE_RANK: '1', BLOCK_SAVE_MARK: mark, BLOCK_SAVE_MS: '2000' }));
  t.after(() => p.kill());
  const name = s.line([])[4]!;
  await until('every rank at the gate', () => gatedLines(p).length, 4, p);
  assert.equal((await ckpt(['checkpoint', name])).code, 0);
  const second = ckpt(['checkpoint', name]);
  await until('rank 1 in its save()', () => (existsSync(mark) ? 1 : 0), 1, p);
  p.child.kill('SIGTERM');
  assert.equal((await second).code, 0, 'the checkpoint in progress was committed');
  assert.equal((await p.exited).code, 143, p.stderr);
  assert.match(p.stderr, /SIGTERM: letting the checkpoint in progress finish/);
  assert.deepEqual(readdirSync(s.store).sort(), ['000001', '000002']);
  assert.equal((await ckpt(['snapshots', 'verify', s.store])).code, 0);
});

test('--max-restarts without a snapshot: the job fails and says --restart-from-scratch; with it, it starts again', async (t) => {
  const expected = await uninterrupted();
  const s = setup(t, 'self');
  const p = ckptProgram(s.line(['--max-restarts', '2']), jobEnv(s, 'self'));
  t.after(() => p.kill());
  const name = s.line([])[4]!;
  await until('every rank at the gate', () => gatedLines(p).length, 4, p);
  await killARank(name, 0);
  assert.equal((await p.exited).code, 137);
  assert.match(p.stderr, /no committed snapshot in .* to recover from \(--restart-from-scratch/);

  const s2 = setup(t, 'self');
  const q = ckptProgram(s2.line(['--max-restarts', '2', '--restart-from-scratch']), jobEnv(s2, 'self'));
  t.after(() => q.kill());
  const name2 = s2.line([])[4]!;
  await until('every rank at the gate', () => gatedLines(q).length, 4, q);
  await killARank(name2, 3);
  await until('the restart from the beginning', () => gatedLines(q).length, 8, q);
  assert.match(q.stderr, /restarting from the beginning \(restart 1 of 2\)/);
  writeFileSync(s2.gate, '');
  assert.equal((await q.exited).code, 0, q.stderr);
  assert.deepEqual(sums(q), expected);
});

test('usage: a signal that cannot be caught, --on-checkpoint-signal alone, --restart-from-scratch alone', async () => {
  for (const [args, re] of [
    [['--checkpoint-signal', 'KILL'], /signal a process can catch/],
    [['--on-checkpoint-signal', 'requeue'], /goes with --checkpoint-signal/],
    [['--checkpoint-signal', 'USR1', '--on-checkpoint-signal', 'later'], /stop or requeue/],
    [['--restart-from-scratch'], /goes with --max-restarts/],
    [['--resume'], /needs the job's --name or --dir/],
  ] as [string[], RegExp][]) {
    const r = await ckpt(['run', '-n', '1', ...args, '--', 'true']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});
