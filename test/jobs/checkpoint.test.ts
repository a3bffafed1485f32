// What only the self checkpointer has (reliability.test.ts runs the scenarios it
// shares with criu): where each rank's state goes (the job's pack file or files of
// its own), periodic checkpoints with --interval/--keep, and a checkpoint that
// cannot finish because a rank computes without a safe point: it aborts cleanly.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CHECKPOINTED, type Job } from '../../dist/runtime/launcher.js';
import { listSnapshots, openSnapshot, verifySnapshot, type Snapshot } from '../../dist/store/store.js';
import type { JobManifest } from '../../dist/store/manifest.js';
import { ckpt, jobReady, tempDir, waitForJobLine } from '../helpers.js';
import { collect, program, restartJob, restartToEnd, startExchange, uninterrupted, working } from './exchange.js';

const self = { crs: 'self', iters: 4000, name: `t${process.pid}` } as const;
const start = (t: TestContext, store: string, env: Record<string, string> = {}): Promise<Job> => startExchange(t, store, { ...self, env: { PROGRESS: '250', ...env } });
const baseline = (t: TestContext, env: Record<string, string> = {}): Promise<Map<number, string>> => uninterrupted(t, { ...self, env: { PROGRESS: '250', ...env } });

/** Where each rank's state went: into the job's pack file (small) or files of its own. */
const storage = (snap: Snapshot): string[] => (snap.manifest as JobManifest).ranks.map((r) => (r.packed ? 'packed' : 'files'));

/**
 * `cycles` times: once the job is working, checkpoint with `then: 'terminate'`, then
 * restart; the last restarted job runs to its end. Its checksums, and where each
 * snapshot's ranks went.
 */
async function killRestartCycles(t: TestContext, env: Record<string, string>, cycles: number): Promise<{ sums: Map<number, string>; stored: string[] }> {
  const stored: string[] = [];
  const store = join(tempDir(t), 'store');
  let job = await start(t, store, env);
  let sums = collect(job);
  for (let cycle = 1; cycle <= cycles; cycle++) {
    await jobReady(job);
    await working(job);
    const snap = await job.checkpoint({ then: 'terminate' });
    assert.equal(snap.seq, cycle);
    stored.push(...storage(snap));
    const ended = await job.wait();
    assert.equal(ended.status, EXIT_CHECKPOINTED, `cycle ${cycle}: ${ended.error?.message}`);
    assert.equal(sums.size, 0, 'the job was ended before it finished');
    job = await restartJob(t, store);
    sums = collect(job);
  }
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  return { sums, stored };
}

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

test('a checkpoint that cannot finish (a rank computes without a safe point) aborts cleanly: the job goes on, the previous snapshot stays intact, the next one restarts', async (t) => {
  const expected = await baseline(t);
  const store = join(tempDir(t), 'store');
  // Rank 1 computes for 3 s without a safe point at iteration 1500 (and says so first).
  const job = await start(t, store, { SLOW_AT: '1500', SLOW_MS: '3000' });
  await jobReady(job);
  const slow = waitForJobLine(job, /^slow$/);
  const first = await job.checkpoint();
  await slow;
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
