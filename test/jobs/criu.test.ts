// Coordinated checkpoints of a 4-rank job with the criu checkpointer: every rank
// is dumped by CRIU wherever its code is (the fixture runs without safe points),
// and a restart restores every rank. The same reliability checks as for self:
// continue cycles and kill-restart cycles end with exactly the checksums of an
// uninterrupted run; a rank killed during a checkpoint leaves no partial snapshot.
import { test, type TestContext } from 'node:test';
import { EXIT_CHECKPOINTED } from '../../dist/runtime/launcher.js';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import type { Job } from '../../dist/runtime/launcher.js';
import { collect, program, startExchange, uninterrupted } from './exchange.js';
import { restartSnapshot } from '../../dist/process/restart.js';
import { listSnapshots, openSnapshot, verifySnapshot } from '../../dist/store/store.js';
import { assertPrivate, ckpt, ckptProgram, fillUp, mountTmpfs, needCriu, tempDir } from '../helpers.js';
import { waitForListedJob } from '../helpers.js';
import { readStat } from '../../dist/util/procfs.js';
import type { JobManifest } from '../../dist/store/manifest.js';

/** Running (a zombie waiting to be reaped no longer runs anything). */
const running = (pid: number): boolean => {
  const st = readStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
};

const ITERS = 6000;

const criu = { crs: 'criu', iters: ITERS, name: `c${process.pid}`, env: { NO_SAFEPOINT: '1' } } as const;
const start = (t: TestContext, store: string, env: Record<string, string> = {}, keep?: number): Promise<Job> =>
  startExchange(t, store, { ...criu, env: { ...criu.env, ...env }, keep });

const ready = (job: Job) => new Promise<void>((r) => (job.isReady ? r() : job.once('ready', () => r())));
/** Collects what is written to it, as text. */
class TextSink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const restart = async (t: TestContext, store: string, stderr?: Writable) => {
  // A restored rank may print before restartSnapshot() returns: the sinks are there from the start.
  const output = stderr ? ({ mode: 'prefix', stdout: new TextSink(), stderr } as const) : ({ mode: 'events' } as const);
  const again = await restartSnapshot(store, { job: { output, register: false } });
  const job = again.process.job!;
  t.after(() => job.kill());
  return job;
};

const baseline = (t: TestContext, env: Record<string, string> = {}): Promise<Map<number, string>> =>
  uninterrupted(t, { ...criu, env: { ...criu.env, ...env } });

/**
 * `cycles` times: checkpoint with `then: 'terminate'`, then restore; the last
 * restored job runs to its end. Its checksums, and what the restored ranks printed.
 */
async function killRestartCycles(t: TestContext, env: Record<string, string>, cycles: number): Promise<{ sums: Map<number, string>; stderr: string }> {
  const store = join(tempDir(t), 'store');
  let job = await start(t, store, env);
  let sums = collect(job);
  const stderr = new TextSink();
  for (let cycle = 1; cycle <= cycles; cycle++) {
    await ready(job);
    await sleep(150);
    const snap = await job.checkpoint({ then: 'terminate' });
    assert.equal(snap.seq, cycle, 'the restarted job goes on numbering in the same store');
    assert.equal(snap.manifest.crs.name, 'criu');
    const ended = await job.wait();
    assert.equal(ended.status, EXIT_CHECKPOINTED, `cycle ${cycle}: ${ended.error?.message}`);
    assert.equal(sums.size, 0, 'the job was ended before it finished');
    job = await restart(t, store, stderr);
    sums = collect(job);
  }
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  return { sums, stderr: stderr.text };
}

test('criu: 20 checkpoint-and-continue cycles end with the checksums of an uninterrupted run', async (t) => {
  if (!(await needCriu(t))) return;
  const expected = await baseline(t);
  const store = join(tempDir(t), 'store');
  const job = await start(t, store, { ITERS: String(ITERS * 3) }, 3);
  const sums = collect(job);
  await ready(job);
  for (let i = 1; i <= 20; i++) {
    const snap = await job.checkpoint();
    assert.equal(snap.seq, i);
  }
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  // A longer run than the baseline's: compare with its own uninterrupted run.
  const plain = await start(t, join(tempDir(t), 'unused'), { ITERS: String(ITERS * 3) });
  const plainSums = collect(plain);
  assert.equal((await plain.wait()).status, 0);
  assert.deepEqual(sums, plainSums);
  assert.notDeepEqual(plainSums, expected);
  // --keep 3: the newest three remain.
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [18, 19, 20]);
  const last = openSnapshot(store);
  assert.equal(last.manifest.kind, 'job');
  assert.equal(last.manifest.crs.name, 'criu');
  assert.ok((await verifySnapshot(last)).ok);
  assertPrivate(last.dir);
});

test('criu: 5 checkpoint-kill-restart cycles end with the checksums of an uninterrupted run', async (t) => {
  if (!(await needCriu(t))) return;
  const { sums, stderr } = await killRestartCycles(t, {}, 5);
  assert.deepEqual(sums, await baseline(t));
  // Every restored rank saw `restart` in its onRestart hook, once per restart.
  const restarts = stderr.split('\n').filter((l) => /^\[\d\] rank \d restarted at iteration \d+/.test(l));
  assert.equal(restarts.length, 5 * 4, stderr);
});

test('criu: 1 MiB messages, senders blocked in their sends: 3 checkpoint-kill-restart cycles end with the checksums of an uninterrupted run', async (t) => {
  if (!(await needCriu(t))) return;
  const env = { BIG: String(1 << 20) };
  assert.deepEqual((await killRestartCycles(t, env, 3)).sums, await baseline(t, env));
});

test('criu: a rank asks for a checkpoint with comm.checkpoint(); the restored ranks see restart', async (t) => {
  if (!(await needCriu(t))) return;
  const expected = await baseline(t);
  const store = join(tempDir(t), 'store');
  const job = await start(t, store, { CHECKPOINT_AT: '300' });
  const sums = collect(job);
  const lines: string[] = [];
  job.on('output', ({ stream, line }) => stream === 'stderr' && lines.push(line.toString().trim()));
  const r = await job.wait();
  assert.equal(r.status, 0, r.error?.message);
  assert.deepEqual(sums, expected);
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1]);
  assert.equal(openSnapshot(store).manifest.crs.name, 'criu');
  for (let q = 0; q < 4; q++) assert.ok(lines.includes(`rank ${q} comm.checkpoint() -> continue seq 1`), lines.join('\n'));
  // Restored, every rank's comm.checkpoint() (waiting, or called later) resolves restart.
  const stderr = new TextSink();
  const job2 = await restart(t, store, stderr);
  const sums2 = collect(job2);
  const r2 = await job2.wait();
  assert.equal(r2.status, 0, r2.error?.message);
  assert.deepEqual(sums2, expected);
  for (let q = 0; q < 4; q++) assert.match(stderr.text, new RegExp(`\\[${q}\\] rank ${q} comm.checkpoint\\(\\) -> restart seq 1`));
});

for (const phase of ['prepare', 'drain', 'dump', 'commit'] as const) {
  test(`criu: a rank SIGKILLed in phase ${phase}: no partial snapshot is listed, the newest committed one restarts`, async (t) => {
    if (!(await needCriu(t))) return;
    const expected = await baseline(t);
    const store = join(tempDir(t), 'store');
    const job = await start(t, store);
    await ready(job);
    await job.checkpoint();
    const victim = job.pids[1]!;
    const pending = job.checkpoint({ onPhase: (p) => p === phase && process.kill(victim, 'SIGKILL') });
    if (phase === 'commit') {
      // Every rank was dumped: the snapshot is committed and reported (the resume is
      // not waited for); the job then ends because a rank died.
      assert.equal((await pending).seq, 2);
    } else await assert.rejects(pending, (err: Error & { code?: string }) => err.code === 'ECKPT_CHECKPOINT_FAILED');
    const ended = await job.wait();
    assert.notEqual(ended.status, 0);
    assert.ok(readdirSync(store).every((n) => !n.startsWith('.')), `no partial snapshot: ${readdirSync(store).join(' ')}`);
    const listed = listSnapshots(store);
    assert.ok(listed.length >= 1 && listed[0]!.seq === 1, listed.map((s) => s.seq).join(','));
    for (const s of listed) assert.ok((await verifySnapshot(openSnapshot(s.dir))).ok);
    const job2 = await restart(t, store);
    const sums = collect(job2);
    const r = await job2.wait();
    assert.equal(r.status, 0, r.error?.message);
    assert.deepEqual(sums, expected);
  });
}

test('criu: a prepare hook that fails aborts the checkpoint before any rank goes down; the job goes on and checkpoints again', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  const env = { REFUSE_FIRST_PREPARE: '2' };
  const expected = await baseline(t, env);
  const job = await start(t, store, env);
  await ready(job);
  await assert.rejects(job.checkpoint(), (err: Error & { code?: string }) => err.code === 'ECKPT_CHECKPOINT_FAILED' && /phase drain/.test(err.message) && /prepare hook refuses/.test(err.message));
  assert.ok(!existsSync(store), 'the aborted first snapshot took the store it created with it');
  // Every rank kept its links: the next checkpoint works, and its snapshot restarts to the same end.
  const next = await job.checkpoint({ then: 'terminate' });
  assert.equal(next.seq, 1);
  assert.equal((await job.wait()).status, EXIT_CHECKPOINTED);
  const again = await restart(t, store);
  const sums = collect(again);
  assert.equal((await again.wait()).status, 0);
  assert.deepEqual(sums, expected);
});

test('criu: the disk filling up during the dumps: a clean error, the job goes on, the previous snapshot is intact', async (t) => {
  if (!(await needCriu(t))) return;
  if (process.geteuid?.() !== 0) return t.skip('mounting a tmpfs needs root');
  const expected = await baseline(t);
  // Room for several snapshots however large the ranks have grown (a later dump
  // is larger than the first: V8's heap grows as the job runs).
  // Two dumps at a time: after the first failed one, no further rank goes down.
  process.env.CKPT_DUMP_CONCURRENCY = '2';
  t.after(() => void delete process.env.CKPT_DUMP_CONCURRENCY);
  const mnt = mountTmpfs(t, '1g');
  const store = join(mnt, 'store');
  mkdirSync(store);
  const job = await start(t, store);
  const sums = collect(job);
  await ready(job);
  await job.checkpoint();
  fillUp(join(mnt, 'filler'));
  await assert.rejects(job.checkpoint(), (err: Error & { code?: string; cause?: { details?: { ranks?: number[] } } }) => {
    // At most the two first ranks were dumped (and failed): the others never went down.
    const failed = err.cause?.details?.ranks ?? [];
    return err.code === 'ECKPT_CHECKPOINT_FAILED' && /phase dump/.test(err.message) && failed.length >= 1 && failed.every((r) => r < 2);
  });
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1]);
  assert.ok((await verifySnapshot(openSnapshot(store))).ok);
  assert.ok(readdirSync(store).every((n) => !n.startsWith('.')));
  // The job went on, and can still be checkpointed once there is room again.
  rmSync(join(mnt, 'filler'));
  assert.equal((await job.checkpoint()).seq, 2);
  const r = await job.wait();
  assert.equal(r.status, 0, r.error?.message);
  assert.deepEqual(sums, expected);
});

test('criu: ckpt run --crs criu, ckpt checkpoint JOB --term, ckpt restart: [rank]-prefixed output, status 0', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const env = { ITERS: '8000', NO_SAFEPOINT: '1', CKPT_STATE_DIR: join(dir, 'state') };
  const run = ckptProgram(['run', '-n', '4', '--crs', 'criu', '--name', 'crijob', '--dir', store, '--', process.execPath, program], env);
  t.after(() => run.kill());
  // Listed, not ready: a checkpoint asked for while the job starts is taken once every rank has joined.
  await waitForListedJob('crijob', env);
  const cp = await ckpt(['checkpoint', 'crijob', '--json'], env);
  assert.equal(cp.code, 0, cp.stderr);
  assert.equal(JSON.parse(cp.stdout).seq, 1);
  const term = await ckpt(['checkpoint', 'crijob', '--term'], env);
  assert.equal(term.code, 0, term.stderr);
  assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);
  const inspect = JSON.parse((await ckpt(['snapshots', 'inspect', store, '--json'], env)).stdout);
  assert.equal(inspect.manifest.crs.name, 'criu');
  assert.equal(inspect.manifest.endState, 'terminate');
  const restarted = ckptProgram(['restart', store], env);
  t.after(() => restarted.kill());
  assert.equal((await restarted.exited).code, 0, restarted.stderr);
  const sums = restarted.lines.filter((l) => /checksum/.test(l));
  assert.equal(sums.length, 4, restarted.lines.join('\n'));
  assert.ok(sums.every((l) => /^\[\d\] rank \d checksum \d+$/.test(l)), sums.join('\n'));
});

test('criu: the coordinator SIGKILLed while the ranks are being dumped: no partial snapshot is listed, the previous one restarts', async (t) => {
  if (!(await needCriu(t))) return;
  const long = { ...criu, env: { ...criu.env, ITERS: String(ITERS * 3) } };
  const expected = await uninterrupted(t, long);
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const env = { ...long.env, CKPT_STATE_DIR: join(dir, 'state') };
  const name = `k${process.pid}`;
  const run = ckptProgram(['run', '-n', '4', '--crs', 'criu', '--name', name, '--dir', store, '--', process.execPath, program], env);
  t.after(() => run.kill());
  let first = await ckpt(['checkpoint', name, '--json'], env);
  for (let i = 0; i < 100 && first.code !== 0 && /JOB_NOT_FOUND|not every rank/.test(first.stdout + first.stderr); i++) {
    await sleep(50);
    first = await ckpt(['checkpoint', name, '--json'], env);
  }
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).seq, 1);
  const pids = (openSnapshot(join(store, '000001')).manifest as JobManifest).ranks.map((r) => r.pid);

  // The second checkpoint: once CRIU has begun writing a rank's images, its coordinator dies.
  const second = ckpt(['checkpoint', name], env);
  const dumping = () =>
    readdirSync(store).some((n) => n.startsWith('.partial-') && readdirSync(join(store, n)).some((r) => {
      try {
        return readdirSync(join(store, n, r, 'images')).length > 0;
      } catch {
        return false;
      }
    }));
  for (let i = 0; i < 400 && !dumping(); i++) await sleep(10);
  assert.ok(dumping(), 'the ranks were being dumped');
  run.child.kill('SIGKILL');
  const failed = await second;
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /^ckpt: .*\[ECKPT_/);

  // Without their coordinator the ranks end (those being dumped once CRIU lets them go).
  for (let i = 0; i < 300 && pids.some(running); i++) await sleep(100);
  assert.deepEqual(pids.filter(running), [], 'every rank of the job has ended');
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1], 'only the committed snapshot is listed');
  const job = await restart(t, store);
  const sums = collect(job);
  const r = await job.wait();
  assert.equal(r.status, 0, r.error?.message);
  assert.deepEqual(sums, expected);
});
