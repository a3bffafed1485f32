// Coordinated checkpoints (self checkpointer; criu.test.ts has the criu ones) of a 4-rank job that exchanges messages without pause
// (point-to-point with ANY_SOURCE/ANY_TAG, messages in flight at every safe point,
// collectives): checkpoint-and-continue and checkpoint-kill-restart cycles end with
// exactly the checksums of an uninterrupted run.
import { test, type TestContext } from 'node:test';
import { EXIT_CHECKPOINTED } from '../../dist/runtime/launcher.js';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from '../../dist/runtime/launcher.js';
import { collect, program, restartToEnd, startExchange, uninterrupted } from './exchange.js';
import { restartSnapshot } from '../../dist/process/restart.js';
import { listSnapshots, openSnapshot, verifySnapshot, type Snapshot } from '../../dist/store/store.js';
import type { JobManifest } from '../../dist/store/manifest.js';
import { assertPrivate, ckpt, fillUp, mountTmpfs, tempDir } from '../helpers.js';
import { waitForListedJob } from '../helpers.js';

const ITERS = 4000;

const self = { crs: 'self', iters: ITERS, name: `t${process.pid}` } as const;
const start = (t: TestContext, store: string, env: Record<string, string> = {}): Promise<Job> => startExchange(t, store, { ...self, env });
const baseline = (t: TestContext, env: Record<string, string> = {}): Promise<Map<number, string>> => uninterrupted(t, { ...self, env });

/** Where each rank's state went: into the job's pack file (small) or files of its own. */
const storage = (snap: Snapshot): string[] => (snap.manifest as JobManifest).ranks.map((r) => (r.packed ? 'packed' : 'files'));

/**
 * `cycles` times: checkpoint with `then: 'terminate'`, then restart; the last
 * restarted job runs to its end. Its checksums, and where each snapshot's ranks went.
 */
async function killRestartCycles(t: TestContext, env: Record<string, string>, cycles: number): Promise<{ sums: Map<number, string>; stored: string[] }> {
  const stored: string[] = [];
  const store = join(tempDir(t), 'store');
  let job = await start(t, store, env);
  let sums = collect(job);
  for (let cycle = 1; cycle <= cycles; cycle++) {
    await new Promise<void>((r) => (job.isReady ? r() : job.once('ready', () => r())));
    await sleep(100);
    const snap = await job.checkpoint({ then: 'terminate' });
    assert.equal(snap.seq, cycle);
    stored.push(...storage(snap));
    const ended = await job.wait();
    assert.equal(ended.status, EXIT_CHECKPOINTED, `cycle ${cycle}: ${ended.error?.message}`);
    assert.equal(sums.size, 0, 'the job was ended before it finished');
    const restarted = await restartSnapshot(store, { job: { output: { mode: 'events' }, register: false } });
    job = restarted.process.job!;
    t.after(() => job.kill());
    sums = collect(job);
  }
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  return { sums, stored };
}

test('20 checkpoint-and-continue cycles end with the checksums of an uninterrupted run', async (t) => {
  const expected = await baseline(t);
  const store = join(tempDir(t), 'store');
  const job = await start(t, store);
  const sums = collect(job);
  await new Promise<void>((r) => job.once('ready', () => r()));
  for (let i = 1; i <= 20; i++) {
    const snap = await job.checkpoint();
    assert.equal(snap.seq, i);
  }
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  assert.deepEqual(sums, expected);
  const list = listSnapshots(store);
  assert.equal(list.length, 20);
  const last = openSnapshot(store);
  assert.equal(last.manifest.kind, 'job');
  assert.equal(last.manifest.crs.name, 'self');
  assert.ok((await verifySnapshot(last)).ok);
  assertPrivate(last.dir);
});

test('5 checkpoint-kill-restart cycles end with the checksums of an uninterrupted run', async (t) => {
  const { sums, stored } = await killRestartCycles(t, {}, 5);
  assert.deepEqual(sums, await baseline(t));
  // Small states: every rank of every snapshot went into the job's pack file.
  assert.deepEqual(new Set(stored), new Set(['packed']));
});

test('1 MiB messages, senders blocked in their sends: 3 checkpoint-kill-restart cycles end with the checksums of an uninterrupted run', async (t) => {
  const env = { BIG: String(1 << 20) };
  assert.deepEqual((await killRestartCycles(t, env, 3)).sums, await baseline(t, env));
});

test('a rank with a large state writes files of its own beside the packed small ones; 2 checkpoint-kill-restart cycles end with the checksums', async (t) => {
  const env = { PAD_RANK: '2', PAD_BYTES: String(200 << 10) };
  const { sums, stored } = await killRestartCycles(t, env, 2);
  assert.deepEqual(stored, ['packed', 'packed', 'files', 'packed', 'packed', 'packed', 'files', 'packed']);
  assert.deepEqual(sums, await baseline(t, env));
});

test('CKPT_SELF_INLINE_BYTES=0: every rank writes files of its own; 2 checkpoint-kill-restart cycles still end with the checksums', async (t) => {
  process.env.CKPT_SELF_INLINE_BYTES = '0';
  t.after(() => delete process.env.CKPT_SELF_INLINE_BYTES);
  const { sums, stored } = await killRestartCycles(t, {}, 2);
  assert.deepEqual(new Set(stored), new Set(['files']));
  assert.deepEqual(sums, await baseline(t));
});

test('a rank asks for a checkpoint with comm.checkpoint(), collectively', async (t) => {
  const expected = await baseline(t);
  const store = join(tempDir(t), 'store');
  const job = await start(t, store, { CHECKPOINT_AT: '300' });
  const sums = collect(job);
  const lines: string[] = [];
  job.on('output', ({ stream, line }) => stream === 'stderr' && lines.push(line.toString().trim()));
  assert.equal((await job.wait()).status, 0);
  assert.deepEqual(sums, expected);
  assert.equal(listSnapshots(store).length, 1);
  for (let r = 0; r < 4; r++) assert.ok(lines.includes(`rank ${r} comm.checkpoint() -> continue seq 1`), lines.join('\n'));
  // And the job restarts from that snapshot to the same end.
  assert.deepEqual(await restartToEnd(t, store), expected);
});

test('ckpt run --interval --keep checkpoints periodically and keeps the newest K', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const r = await ckpt(['run', '-n', '3', '--interval', '1', '--keep', '2', '--dir', store, '--', process.execPath, program], {
    ITERS: '12000',
    CKPT_STATE_DIR: join(dir, 'state'),
  });
  assert.equal(r.code, 0, r.stderr);
  const seqs = listSnapshots(store).map((s) => s.seq);
  assert.ok(seqs.length >= 1 && seqs.length <= 2, `kept ${seqs.join(',')}`);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.ok(readdirSync(store).every((n) => !n.startsWith('.partial')), 'no partial snapshot left');
});

test('ckpt checkpoint JOB / ckpt restart through the CLI, and --term ends the job with status 85 (checkpointed)', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const env = { ITERS: '6000', CKPT_STATE_DIR: join(dir, 'state') };
  const { Program, ckptProgram } = await import('../helpers.js');
  const run = ckptProgram(['run', '-n', '4', '--name', 'clijob', '--dir', store, '--', process.execPath, program], env);
  t.after(() => run.kill());
  // Listed, not ready: a checkpoint asked for while the job starts is taken once every rank has joined.
  await waitForListedJob('clijob', env);
  const cp = await ckpt(['checkpoint', 'clijob', '--json'], env);
  assert.equal(cp.code, 0, cp.stderr);
  assert.equal(JSON.parse(cp.stdout).seq, 1);
  const term = await ckpt(['checkpoint', 'clijob', '--term'], env);
  assert.equal(term.code, 0, term.stderr);
  assert.match(term.stdout, /seq 2.*was ended/);
  const exit = await run.exited;
  assert.equal(exit.code, EXIT_CHECKPOINTED, run.stderr);
  const inspect = JSON.parse((await ckpt(['snapshots', 'inspect', store, '--json'], env)).stdout);
  assert.equal(inspect.manifest.kind, 'job');
  assert.equal(inspect.manifest.endState, 'terminate');
  const text = await ckpt(['snapshots', 'inspect', store], env);
  // self packs the small ranks' states; criu's images are in rank-N/ directories.
  assert.match(text.stdout, inspect.manifest.crs.name === 'self' ? /^ranks +0–3 in ranks\.pack; safe point \d+$/m : /^ranks +0–3 in rank-N\/$/m);
  const restarted = ckptProgram(['restart', store], env);
  t.after(() => restarted.kill());
  assert.equal((await restarted.exited).code, 0, restarted.stderr);
  assert.equal(restarted.lines.filter((l) => /checksum/.test(l)).length, 4);
  void Program;
});

test('a checkpoint that cannot finish aborts cleanly: the job goes on, the previous snapshot stays intact, the next one restarts', async (t) => {
  const expected = await baseline(t);
  const store = join(tempDir(t), 'store');
  // Rank 1 computes for 3 s without a safe point at iteration 1500.
  const job = await start(t, store, { SLOW_AT: '1500', SLOW_MS: '3000' });
  await new Promise<void>((r) => job.once('ready', () => r()));
  const first = await job.checkpoint();
  await new Promise<void>((resolve) => job.on('output', ({ line }) => line.toString().trim() === 'slow' && resolve()));
  // Rank 1 cannot answer for 3 s: every phase of the checkpoint gives up after 500 ms.
  process.env.CKPT_CHECKPOINT_REACH_MS = '500';
  process.env.CKPT_CHECKPOINT_PHASE_MS = '500';
  try {
    await assert.rejects(job.checkpoint(), (err: Error & { code?: string }) => err.code === 'ECKPT_CHECKPOINT_FAILED' && /phase (prepare|save)/.test(err.message));
  } finally {
    delete process.env.CKPT_CHECKPOINT_REACH_MS;
    delete process.env.CKPT_CHECKPOINT_PHASE_MS;
  }
  assert.ok(readdirSync(store).every((n) => !n.startsWith('.partial')), 'the aborted snapshot is gone');
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [first.seq]);
  assert.ok((await verifySnapshot(openSnapshot(store))).ok);
  // The next checkpoint after an abort (whose held sends went out on the resume)
  // must still drain exactly: a message lost or doubled shows only on a restart.
  const next = await job.checkpoint({ then: 'terminate' });
  assert.equal(next.seq, first.seq + 1);
  assert.equal((await job.wait()).status, EXIT_CHECKPOINTED);
  assert.deepEqual(await restartToEnd(t, store), expected);
});

test('a rank SIGKILLed during a checkpoint: no half-written snapshot is listed, the previous one restarts', async (t) => {
  const expected = await baseline(t);
  const store = join(tempDir(t), 'store');
  const job = await start(t, store, { SLOW_AT: '1500', SLOW_MS: '5000' });
  await new Promise<void>((r) => job.once('ready', () => r()));
  await job.checkpoint();
  await new Promise<void>((resolve) => job.on('output', ({ line }) => line.toString().trim() === 'slow' && resolve()));
  const pending = job.checkpoint();
  await sleep(300);
  process.kill(job.pids[1]!, 'SIGKILL');
  await assert.rejects(pending, (err: Error & { code?: string }) => err.code === 'ECKPT_CHECKPOINT_FAILED');
  const ended = await job.wait();
  assert.notEqual(ended.status, 0);
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1]);
  assert.deepEqual(await restartToEnd(t, store), expected);
});

test('the disk filling up during a checkpoint: a clean error, the job goes on, the previous snapshot is intact', async (t) => {
  if (process.geteuid?.() !== 0) return t.skip('mounting a tmpfs needs root');
  const expected = await baseline(t);
  const mnt = mountTmpfs(t, '256k');
  const store = join(mnt, 'store');
  mkdirSync(store);
  const job = await start(t, store);
  const sums = collect(job);
  await new Promise<void>((r) => job.once('ready', () => r()));
  await job.checkpoint();
  fillUp(join(mnt, 'filler'));
  await assert.rejects(job.checkpoint(), (err: Error & { code?: string; cause?: { code?: string } }) => err.code === 'ECKPT_CHECKPOINT_FAILED' && /no space|ENOSPC/i.test(err.message));
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1]);
  assert.ok((await verifySnapshot(openSnapshot(store))).ok);
  assert.ok(readdirSync(store).every((n) => !n.startsWith('.partial')));
  assert.equal((await job.wait()).status, 0);
  assert.deepEqual(sums, expected);
});

test('the coordinator SIGKILLed during a checkpoint: no half-written snapshot is listed, the previous one restarts', async (t) => {
  const expected = await baseline(t);
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const env = { ITERS: String(ITERS), SLOW_AT: '3000', SLOW_MS: '4000', CKPT_STATE_DIR: join(dir, 'state') };
  const { ckptProgram } = await import('../helpers.js');
  const run = ckptProgram(['run', '-n', '4', '--crs', 'self', '--name', 'victim', '--dir', store, '--', process.execPath, program], env);
  t.after(() => run.kill());
  // The first checkpoint as soon as the job is registered (long before rank 1's slow spell).
  let first = await ckpt(['checkpoint', 'victim', '--json'], env);
  for (let i = 0; i < 100 && first.code !== 0 && /JOB_NOT_FOUND|not every rank/.test(first.stdout + first.stderr); i++) {
    await sleep(50);
    first = await ckpt(['checkpoint', 'victim', '--json'], env);
  }
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).seq, 1);
  assert.ok(!run.lines.includes('[1] slow'), 'the first checkpoint came before the slow spell');
  await run.waitFor(/^\[1\] slow$/);
  // Rank 1 cannot answer for 4 s: the checkpoint is under way when its coordinator dies.
  const second = ckpt(['checkpoint', 'victim'], env);
  await sleep(300);
  run.child.kill('SIGKILL');
  const failed = await second;
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /^ckpt: .*\[ECKPT_/);
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1], 'only the committed snapshot is listed');
  assert.deepEqual(await restartToEnd(t, store), expected);
});
