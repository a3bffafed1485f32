// The rank's checkpoint session: an explicit state, so a request that does not fit
// it is refused with ECKPT_OOB_PROTOCOL (and the job goes on); onContinue runs after
// an aborted checkpoint too, with `aborted`, for a rank whose onPrepare ran.
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchJob, type Job } from '../../dist/runtime/index.js';
import { eventually, fixture, jobReady, privateStateDir, tempDir } from '../helpers.js';

privateStateDir();

async function hooksJob(t: TestContext, env: NodeJS.ProcessEnv = {}): Promise<{ job: Job; lines: string[]; stop: () => void; store: string }> {
  const dir = tempDir(t);
  const stopFile = join(dir, 'stop');
  const job = await launchJob({
    command: process.execPath,
    args: [fixture('jobs/hooks.mjs')],
    size: 3,
    crs: 'self',
    store: join(dir, 'store'),
    output: { mode: 'events' },
    env: { ...env, STOP_FILE: stopFile },
  });
  t.after(() => job.kill());
  const lines: string[] = [];
  job.on('output', ({ line }) => lines.push(line.toString().trim()));
  await jobReady(job);
  // Past its first barrier, every rank has a link with every other (links are made when first used).
  assert.ok(await eventually(() => lines.filter((l) => /^rank \d linked$/.test(l)).length === 3), lines.join('\n'));
  return { job, lines, stop: () => writeFileSync(stopFile, ''), store: join(dir, 'store') };
}

/** One request to a rank, as the coordinator sends it: the reply, or the rank's error. */
function request(job: Job, rank: number, op: string, body: Record<string, unknown> = {}) {
  return (job as unknown as { coordinator: { requestRank(r: number, op: string, ms: number, body: Record<string, unknown>): Promise<Record<string, unknown>> } }).coordinator.requestRank(rank, op, 10_000, body);
}

test('a request that does not fit the rank\'s checkpoint state is ECKPT_OOB_PROTOCOL; the job goes on and checkpoints', async (t) => {
  const { job, stop, store } = await hooksJob(t);
  await assert.rejects(request(job, 0, 'ckpt-save', { target: 1, rankDir: '/nonexistent', inlineBytes: 0 }), /no checkpoint is pending/);
  await assert.rejects(request(job, 0, 'ckpt-dump', { rankDir: '/nonexistent' }), /no checkpoint is pending/);
  await request(job, 1, 'ckpt-prepare', { seq: 99, store, dir: join(store, 'x'), crs: 'self' });
  // A self checkpoint has no drain round and no dump.
  await assert.rejects(request(job, 1, 'ckpt-drain', { expected: [0, 0, 0] }), /ckpt-drain in state 'prepared' of checkpoint 99 \(self\)/);
  await assert.rejects(request(job, 1, 'ckpt-dump', { rankDir: '/nonexistent' }), /ckpt-dump in state 'prepared'/);
  // Malformed: every field is checked where it is read.
  await assert.rejects(request(job, 1, 'ckpt-reach', { target: 'soon' }), /ckpt-reach\.target must be a count/);
  await request(job, 1, 'ckpt-resume', { outcome: 'abort' });
  const snapshot = await job.checkpoint();
  assert.equal(snapshot.manifest.kind, 'job');
  stop();
  assert.equal((await job.wait()).status, 0);
});

test('criu: a rank says it drains at its dump request (drainAtDump); it still takes a drain round of its own, then runs its hooks, once', async (t) => {
  const { job, lines, stop, store } = await hooksJob(t);
  const prepared = await request(job, 1, 'ckpt-prepare', { seq: 98, store, dir: join(store, 'x'), crs: 'criu' });
  assert.equal(prepared.drainAtDump, true, JSON.stringify(prepared));
  // The separate round a coordinator sends a rank restored from an older snapshot: drained, then the prepare hooks.
  assert.equal((await request(job, 1, 'ckpt-drain', { expected: [0, 0, 0] })).ok, true);
  assert.ok(await eventually(() => lines.includes('rank 1 prepare seq 98')), lines.join('\n'));
  await assert.rejects(request(job, 1, 'ckpt-drain', { expected: [0, 0, 0] }), /ckpt-drain in state 'drained' of checkpoint 98 \(criu\)/);
  await assert.rejects(request(job, 1, 'ckpt-dump', { rankDir: '/nonexistent', expected: 'all' }), /ckpt-dump\.expected must be/);
  await request(job, 1, 'ckpt-resume', { outcome: 'abort' });
  assert.ok(await eventually(() => lines.includes('rank 1 continue seq 98 aborted true')), lines.join('\n'));
  await job.checkpoint();
  stop();
  assert.equal((await job.wait()).status, 0);
});

test('criu in one round: a rank that cannot begin at its dump request says so on every link; its peers, waiting for its drain marker, fail at once and their hooks never ran', async (t) => {
  const { job, lines, stop, store } = await hooksJob(t);
  const begin = { seq: 97, store, dir: join(store, 'y'), crs: 'criu' };
  const dump = (r: number, body: Record<string, unknown>) => request(job, r, 'ckpt-dump', { rankDir: '/nonexistent', marker: 4242, ...body });
  await assert.rejects(dump(0, { begin, marker: undefined }), /needs a marker id/);
  const peers = [0, 1].map((r) => assert.rejects(dump(r, { begin }), /rank 2 takes no part in this checkpoint/));
  // Rank 2 cannot begin (a malformed request): its abort marker tells ranks 0 and 1.
  await assert.rejects(dump(2, { begin: { ...begin, seq: 'x' } }), /begin\.seq must be a count/);
  await Promise.all(peers);
  assert.ok(!lines.some((l) => /prepare seq 97/.test(l)), lines.join('\n'));
  for (const r of [0, 1]) await request(job, r, 'ckpt-resume', { outcome: 'abort' });
  await job.checkpoint();
  stop();
  assert.equal((await job.wait()).status, 0);
});

test('criu in one round: a rank with a stale checkpoint pending (its resume lost) ends it and begins the new one', async (t) => {
  const { job, stop, store } = await hooksJob(t);
  const begin = { seq: 96, store, dir: join(store, 'z'), crs: 'criu' };
  const dump = (r: number, body: Record<string, unknown>) => request(job, r, 'ckpt-dump', { rankDir: '/nonexistent', marker: 4343, ...body });
  await request(job, 1, 'ckpt-prepare', { seq: 95, store, dir: join(store, 'w'), crs: 'self' });
  const one = assert.rejects(dump(1, { begin }), /rank [02] takes no part in this checkpoint/);
  for (const r of [0, 2]) await assert.rejects(dump(r, { begin: { ...begin, seq: 'x' } }), /begin\.seq must be a count/);
  await one;
  await request(job, 1, 'ckpt-resume', { outcome: 'abort' });
  await job.checkpoint();
  stop();
  assert.equal((await job.wait()).status, 0);
});

test('onContinue runs after an aborted checkpoint too (aborted: true) on a rank whose onPrepare ran; then after the next one (aborted: false)', async (t) => {
  const { job, lines, stop } = await hooksJob(t, { REFUSE_RANK: '1' });
  await assert.rejects(job.checkpoint(), /prepare hook refuses this checkpoint/);
  // Rank 1 answered the abort once its onContinue had run: the line is in already.
  assert.ok(await eventually(() => lines.some((l) => /^rank 1 continue seq \d+ aborted true$/.test(l))), lines.join('\n'));
  await job.checkpoint();
  assert.ok(await eventually(() => lines.filter((l) => /aborted false$/.test(l)).length === 3), lines.join('\n'));
  for (let r = 0; r < 3; r++) assert.ok(lines.some((l) => new RegExp(`^rank ${r} continue seq \\d+ aborted false$`).test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^rank \d safePoint continue$/.test(l)), 'safePoint() resolved continue after the committed one');
  stop();
  assert.equal((await job.wait()).status, 0);
});
