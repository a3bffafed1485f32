// An aborted checkpoint waits for the ranks: the partial snapshot is removed only
// after every rank has answered the abort (or is gone), so no rank writes into a
// removed directory, and no rank is left with a pending checkpoint that would
// refuse the next one ("a checkpoint is already pending").
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchJob, type Job } from '../../dist/runtime/launcher.js';
import { listSnapshots, openSnapshot, verifySnapshot } from '../../dist/store/store.js';
import type { JobManifest } from '../../dist/store/manifest.js';
import { fixture, tempDir } from '../helpers.js';

const SIZE = 3;

/** Lines of every rank; `until(re, n)` resolves once n lines (in all) have matched `re`. */
function watch(job: Job) {
  const lines: { rank: number; stream: string; text: string }[] = [];
  const waiters: { re: RegExp; count: number; resolve: () => void }[] = [];
  const seen = (re: RegExp) => lines.filter((l) => re.test(l.text)).length;
  job.on('output', ({ rank, stream, line }) => {
    lines.push({ rank, stream, text: line.toString().trim() });
    for (const w of waiters.splice(0)) (seen(w.re) >= w.count ? w.resolve() : waiters.push(w));
  });
  const until = (re: RegExp, count = 1): Promise<void> =>
    seen(re) >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, count, resolve }));
  return { lines, until, seen };
}

const partials = (store: string): string[] => readdirSync(store).filter((n) => n.startsWith('.partial'));

/** A steady.mjs job of SIZE self ranks (events output, unregistered) writing into `store`, killed after the test; its lines watched. */
async function steadyJob(t: TestContext, name: string, store: string, env: Record<string, string>) {
  const job = await launchJob({ command: process.execPath, args: [fixture('jobs/steady.mjs')], size: SIZE, name, output: { mode: 'events' }, env, store, register: false, crs: 'self' });
  t.after(() => job.kill());
  return { job, out: watch(job) };
}

test('a rank whose save() fails while another is still writing: the abort waits for it, nothing lands in a removed directory, the next checkpoint succeeds', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const marks = join(dir, 'marks');
  const stop = join(dir, 'stop');
  mkdirSync(store);
  mkdirSync(marks);
  // Rank 0's first save() fails once rank 1's first save() has begun (not before:
  // the abort must find it under way); rank 1's returns once the abort has removed
  // the snapshot — or after 1 s — and would then write files of its own into it.
  const { job, out } = await steadyJob(t, `abort${process.pid}`, store, { STOP_FILE: stop, MARK_DIR: marks, FAIL_SAVE_RANK: '0', SLOW_SAVE_RANK: '1' });
  await out.until(/^progress 0 /);

  await assert.rejects(job.checkpoint(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ECKPT_CHECKPOINT_FAILED');
    assert.match(err.message, /phase save: .*rank 0's save\(\) fails on purpose/);
    assert.doesNotMatch(err.message, /ENOTEMPTY|could not be removed/);
    return true;
  });
  // Rank 1's save() had returned before the abort was reported (the abort waited
  // for it), and the snapshot was still there while it ran …
  assert.equal(readFileSync(join(marks, 'returned'), 'utf8'), 'present', "rank 1's save() ran on after the abort removed the snapshot");
  // … and wrote nothing: the partial snapshot is gone, and stays gone.
  assert.deepEqual(partials(store), []);
  assert.deepEqual(listSnapshots(store), []);

  // The next checkpoint is not refused by a rank still pending in the aborted one.
  const snap = await job.checkpoint();
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [snap.seq]);
  assert.equal((snap.manifest as JobManifest).ranks.length, SIZE);
  assert.ok((await verifySnapshot(openSnapshot(store))).ok);

  // The job goes on to a correct end.
  await out.until(/^progress 0 /, out.seen(/^progress 0 /) + 1);
  writeFileSync(stop, '');
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  const done = out.lines.flatMap((l) => {
    const m = /^done (\d+) (\d+) (\d+)$/.exec(l.text);
    return m ? [{ rank: Number(m[1]), iter: Number(m[2]), sum: Number(m[3]) }] : [];
  });
  assert.equal(done.length, SIZE);
  for (const d of done) {
    assert.equal(d.iter, done[0]!.iter);
    assert.equal(d.sum, (d.iter * (d.iter - 1)) / 2, `rank ${d.rank}'s sum`);
  }
  // Still nothing but the committed snapshot in the store.
  assert.deepEqual(partials(store), []);
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [snap.seq]);
});

test("a rank whose save() never settles: the checkpoint fails at CKPT_CHECKPOINT_PHASE_MS, every rank goes on, the next checkpoint and the job's end are whole", async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const stop = join(dir, 'stop');
  mkdirSync(store);
  // The ranks' deadline for save(); the coordinator's own phase timeout stays at its default.
  const { job, out } = await steadyJob(t, `hang${process.pid}`, store, { STOP_FILE: stop, HANG_SAVE_RANK: '1', CKPT_CHECKPOINT_PHASE_MS: '1000' });
  await out.until(/^progress 0 /);
  await assert.rejects(job.checkpoint(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ECKPT_CHECKPOINT_FAILED');
    assert.match(err.message, /phase save: .*rank 1: save\(\) did not settle within 1000 ms/);
    return true;
  });
  assert.deepEqual(partials(store), []);
  // Rank 1 went on from its safe point: the next checkpoint (its second save() settles) is whole.
  const snap = await job.checkpoint();
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [snap.seq]);
  await out.until(/^progress 0 /, out.seen(/^progress 0 /) + 1);
  writeFileSync(stop, '');
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  const done = out.lines.filter((l) => /^done /.test(l.text));
  assert.equal(done.length, SIZE);
});
