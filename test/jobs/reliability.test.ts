// The reliability scenarios every job checkpointer must pass, run for `self` and for
// `criu` (criu: root and CRIU needed; skipped without them, failed with
// CKPT_REQUIRE_CRIU=1). A 4-rank job exchanges messages without pause; checkpoints
// that continue, end and restart it, and faults at exact points of the protocol
// (CKPT_FAULT, src/util/faults.ts; never a sleep), must end with exactly the
// checksums of an uninterrupted run, and leave no partial snapshot listed.
// What only one checkpointer has is in checkpoint.test.ts (self) and criu.test.ts.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CHECKPOINTED, type Job } from '../../dist/runtime/launcher.js';
import type { CheckpointPhase } from '../../dist/runtime/checkpoint.js';
import type { FaultPoint } from '../../dist/util/faults.js';
import { listSnapshots, openSnapshot, verifySnapshot } from '../../dist/store/store.js';
import type { JobManifest } from '../../dist/store/manifest.js';
import { assertPrivate, ckpt, ckptProgram, eventually, fillUp, jobReady, mountTmpfs, needCriu, procState, tempDir, waitForListedJob } from '../helpers.js';
import { collect, held, program, restartJob, restartToEnd, startExchange, TextSink, uninterrupted, working } from './exchange.js';

interface Checkpointer {
  crs: 'self' | 'criu';
  iters: number;
  /** Iterations long enough for 20 checkpoints while the job runs. */
  longIters: number;
  /** The job's environment in every scenario (PROGRESS: see working()). */
  env: Record<string, string>;
  /** The coordinator's phases, as onPhase names them. */
  phases: CheckpointPhase[];
  /** Fault points a rank passes in each checkpoint. */
  rankPoints: FaultPoint[];
  /** Coordinator fault points at which `ckpt run` is SIGKILLed. */
  coordKillPoints: FaultPoint[];
  /** The phase in which a failing prepare hook is reported. */
  hookPhase: RegExp;
  /** The size of the tmpfs the disk-full scenario fills (room for two snapshots), and the error then. */
  tmpfs: string;
  diskFull: RegExp;
}

const CHECKPOINTERS: Checkpointer[] = [
  {
    crs: 'self',
    iters: 4000,
    longIters: 4000,
    env: { PROGRESS: '250' },
    phases: ['prepare', 'reach', 'save', 'commit'],
    rankPoints: ['arrived', 'save', 'saved'],
    coordKillPoints: ['save', 'commit'],
    hookPhase: /phase save/,
    tmpfs: '256k',
    diskFull: /no space|ENOSPC/i,
  },
  {
    crs: 'criu',
    iters: 6000,
    longIters: 18000,
    // The fixture runs without safe points: CRIU dumps each rank wherever it is.
    env: { NO_SAFEPOINT: '1', PROGRESS: '250' },
    // One round: each rank begins at its dump request and drains by markers (no prepare, no drain round).
    phases: ['dump', 'commit'],
    rankPoints: ['dump', 'dumped'],
    coordKillPoints: ['dump', 'commit'],
    hookPhase: /phase dump/,
    // Room for several dumps however large the ranks have grown (V8's heap grows as the job runs).
    tmpfs: '1g',
    diskFull: /phase dump/,
  },
];

const failedCheckpoint = (err: Error & { code?: string }): boolean => err.code === 'ECKPT_CHECKPOINT_FAILED';
const noPartial = (store: string): void => assert.ok(readdirSync(store).every((n) => !n.startsWith('.')), `no partial snapshot: ${readdirSync(store).join(' ')}`);

for (const cp of CHECKPOINTERS) {
  const { crs } = cp;
  const opts = (env: Record<string, string> = {}, iters = cp.iters) => ({ crs, iters, name: `${crs[0]}${process.pid}`, env: { ...cp.env, ...env } });
  const start = (t: TestContext, store: string, env: Record<string, string> = {}, keep?: number, iters = cp.iters): Promise<Job> =>
    startExchange(t, store, { ...opts(env, iters), keep });
  const baseline = (t: TestContext, env: Record<string, string> = {}, iters = cp.iters): Promise<Map<number, string>> => uninterrupted(t, opts(env, iters));
  /** The test runs only where the checkpointer can. */
  const usable = async (t: TestContext): Promise<boolean> => crs === 'self' || needCriu(t);

  /**
   * `cycles` times: once the job is working, checkpoint with `then: 'terminate'`,
   * then restart; the last restarted job runs to its end. Its checksums, and what
   * the restarted ranks printed on stderr.
   */
  async function killRestartCycles(t: TestContext, env: Record<string, string>, cycles: number): Promise<{ sums: Map<number, string>; stderr: string }> {
    const store = join(tempDir(t), 'store');
    let job = await start(t, store, env);
    let sums = collect(job);
    const stderr = new TextSink();
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await jobReady(job);
      await working(job);
      const snap = await job.checkpoint({ then: 'terminate' });
      assert.equal(snap.seq, cycle, 'the restarted job goes on numbering in the same store');
      assert.equal(snap.manifest.crs.name, crs);
      const ended = await job.wait();
      assert.equal(ended.status, EXIT_CHECKPOINTED, `cycle ${cycle}: ${ended.error?.message}`);
      assert.equal(sums.size, 0, 'the job was ended before it finished');
      job = await restartJob(t, store, stderr);
      sums = collect(job);
    }
    const result = await job.wait();
    assert.equal(result.status, 0, result.error?.message);
    return { sums, stderr: stderr.text };
  }

  test(`${crs}: 20 checkpoint-and-continue cycles end with the checksums of an uninterrupted run; --keep 3 keeps the newest three`, async (t) => {
    if (!(await usable(t))) return;
    const expected = await baseline(t, {}, cp.longIters);
    const store = join(tempDir(t), 'store');
    const job = await start(t, store, {}, 3, cp.longIters);
    const sums = collect(job);
    await jobReady(job);
    const phases: string[][] = [];
    for (let i = 1; i <= 20; i++) {
      const seen: string[] = [];
      assert.equal((await job.checkpoint({ onPhase: (p) => seen.push(p) })).seq, i);
      phases.push(seen);
    }
    // The same protocol every time (criu: in one round, the ranks back on the connections they kept).
    assert.ok(phases.every((p) => p.join() === [...cp.phases, 'resume'].join()), JSON.stringify(phases));
    const result = await job.wait();
    assert.equal(result.status, 0, result.error?.message);
    assert.deepEqual(sums, expected);
    assert.deepEqual(listSnapshots(store).map((s) => s.seq), [18, 19, 20]);
    const last = openSnapshot(store);
    assert.equal(last.manifest.kind, 'job');
    assert.equal(last.manifest.crs.name, crs);
    assert.ok((await verifySnapshot(last)).ok);
    assertPrivate(last.dir);
    if (crs === 'criu') {
      // Each rank described its process in its dump reply, and said when its dump ended (its node's clock).
      const m = last.manifest as JobManifest;
      const data = m.data as { dumpMs: number[]; dumpEndAt: number[] };
      const [from, to] = [Date.parse(m.createdAt), Date.parse(m.committedAt)];
      m.ranks.forEach((r, i) => {
        const rank = r as unknown as { stdio: unknown[]; rejoin: string; tree: number[] };
        assert.ok(data.dumpMs[i]! > 0 && data.dumpEndAt[i]! > from - 1000 && data.dumpEndAt[i]! < to + 1000, JSON.stringify(data));
        assert.equal(rank.stdio.length, 3);
        assert.match(rank.rejoin, /^pipe:\[\d+\]$/);
        assert.ok(rank.tree.includes(r.pid), JSON.stringify(r));
      });
    }
  });

  test(`${crs}: 5 checkpoint-kill-restart cycles end with the checksums of an uninterrupted run; each restarted rank sees onRestart`, async (t) => {
    if (!(await usable(t))) return;
    const { sums, stderr } = await killRestartCycles(t, {}, 5);
    assert.deepEqual(sums, await baseline(t));
    const restarts = stderr.split('\n').filter((l) => /^\[\d\] rank \d restarted at iteration \d+/.test(l));
    assert.equal(restarts.length, 5 * 4, stderr);
  });

  test(`${crs}: 1 MiB messages, senders blocked in their sends: 3 checkpoint-kill-restart cycles end with the checksums of an uninterrupted run`, async (t) => {
    if (!(await usable(t))) return;
    const env = { BIG: String(1 << 20) };
    assert.deepEqual((await killRestartCycles(t, env, 3)).sums, await baseline(t, env));
  });

  test(`${crs}: a rank asks for a checkpoint with comm.checkpoint(), collectively; the snapshot restarts to the same end`, async (t) => {
    if (!(await usable(t))) return;
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
    assert.equal(openSnapshot(store).manifest.crs.name, crs);
    for (let q = 0; q < 4; q++) assert.ok(lines.includes(`rank ${q} comm.checkpoint() -> continue seq 1`), lines.join('\n'));
    const stderr = new TextSink();
    const again = await restartJob(t, store, stderr);
    const sums2 = collect(again);
    const r2 = await again.wait();
    assert.equal(r2.status, 0, r2.error?.message);
    assert.deepEqual(sums2, expected);
    // criu: restored inside comm.checkpoint(), every rank's call resolves restart.
    if (crs === 'criu') for (let q = 0; q < 4; q++) assert.match(stderr.text, new RegExp(`\\[${q}\\] rank ${q} comm.checkpoint\\(\\) -> restart seq 1`));
  });

  test(`${crs}: ckpt run, ckpt checkpoint JOB, --term (status 85), ckpt restart: [rank]-prefixed output, status 0`, async (t) => {
    if (!(await usable(t))) return;
    const dir = tempDir(t);
    const store = join(dir, 'store');
    const name = `cli${crs}`;
    const hold = held(dir);
    const env = { ...cp.env, ...hold.env, ITERS: String(cp.iters), CKPT_STATE_DIR: join(dir, 'state') };
    const run = ckptProgram(['run', '-n', '4', '--crs', crs, '--name', name, '--dir', store, '--', process.execPath, program], env);
    t.after(() => run.kill());
    // Listed, not ready: a checkpoint asked for while the job starts is taken once every rank has joined.
    await waitForListedJob(name, env);
    const first = await ckpt(['checkpoint', name, '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).seq, 1);
    await hold.reached(run);
    const term = await ckpt(['checkpoint', name, '--term'], env);
    assert.equal(term.code, 0, term.stderr);
    assert.match(term.stdout, /seq 2.*was ended/);
    hold.release();
    assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);
    const inspect = JSON.parse((await ckpt(['snapshots', 'inspect', store, '--json'], env)).stdout);
    assert.equal(inspect.manifest.kind, 'job');
    assert.equal(inspect.manifest.crs.name, crs);
    assert.equal(inspect.manifest.endState, 'terminate');
    const text = await ckpt(['snapshots', 'inspect', store], env);
    // self packs the small ranks' states; criu's images are in rank-N/ directories.
    assert.match(text.stdout, crs === 'self' ? /^ranks +0–3 in ranks\.pack; safe point \d+$/m : /^ranks +0–3 in rank-N\/$/m);
    const restarted = ckptProgram(['restart', store], env);
    t.after(() => restarted.kill());
    assert.equal((await restarted.exited).code, 0, restarted.stderr);
    const sums = restarted.lines.filter((l) => /checksum/.test(l));
    assert.equal(sums.length, 4, restarted.lines.join('\n'));
    assert.ok(sums.every((l) => /^\[\d\] rank \d checksum \d+$/.test(l)), sums.join('\n'));
  });

  test(`${crs}: the disk filling up during a checkpoint: a clean error, the previous snapshot intact, the job goes on and checkpoints once there is room`, async (t) => {
    if (!(await usable(t))) return;
    if (process.geteuid?.() !== 0) return t.skip('mounting a tmpfs needs root');
    const expected = await baseline(t);
    if (crs === 'criu') {
      // Two dumps at a time: after the first failed one, no further rank goes down.
      process.env.CKPT_DUMP_CONCURRENCY = '2';
      t.after(() => void delete process.env.CKPT_DUMP_CONCURRENCY);
    }
    const mnt = mountTmpfs(t, cp.tmpfs);
    const store = join(mnt, 'store');
    mkdirSync(store);
    // Held at an iteration until the last checkpoint: the job cannot end first, however fast.
    const hold = held(tempDir(t));
    const job = await start(t, store, hold.env);
    const sums = collect(job);
    await jobReady(job);
    await job.checkpoint();
    fillUp(join(mnt, 'filler'));
    await assert.rejects(job.checkpoint(), (err: Error & { code?: string; cause?: { details?: { ranks?: number[] } } }) => {
      // criu: at most the two first ranks were dumped (and failed): the others never went down.
      const failed = err.cause?.details?.ranks ?? [];
      return failedCheckpoint(err) && cp.diskFull.test(err.message) && (crs === 'self' || (failed.length >= 1 && failed.every((r) => r < 2)));
    });
    assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1]);
    assert.ok((await verifySnapshot(openSnapshot(store))).ok);
    noPartial(store);
    rmSync(join(mnt, 'filler'));
    assert.equal((await job.checkpoint()).seq, 2);
    hold.release();
    const r = await job.wait();
    assert.equal(r.status, 0, r.error?.message);
    assert.deepEqual(sums, expected);
  });

  test(`${crs}: a prepare hook that fails aborts the checkpoint; the job goes on and checkpoints again`, async (t) => {
    if (!(await usable(t))) return;
    const store = join(tempDir(t), 'store');
    const env = { REFUSE_FIRST_PREPARE: '2' };
    const expected = await baseline(t, env);
    const job = await start(t, store, env);
    await jobReady(job);
    await assert.rejects(job.checkpoint(), (err: Error & { code?: string }) => failedCheckpoint(err) && cp.hookPhase.test(err.message) && /prepare hook refuses/.test(err.message));
    assert.ok(!existsSync(store), 'the aborted first snapshot took the store it created with it');
    // Every rank kept its links: the next checkpoint works, and its snapshot restarts to the same end.
    const next = await job.checkpoint({ then: 'terminate' });
    assert.equal(next.seq, 1);
    assert.equal((await job.wait()).status, EXIT_CHECKPOINTED);
    assert.deepEqual(await restartToEnd(t, store), expected);
  });

  test(`${crs}: the coordinator failing at commit (CKPT_FAULT=commit:coord:fail): the partial snapshot goes, the previous one stays intact, the job goes on`, async (t) => {
    if (!(await usable(t))) return;
    const expected = await baseline(t);
    const store = join(tempDir(t), 'store');
    const job = await start(t, store);
    const sums = collect(job);
    await jobReady(job);
    const first = await job.checkpoint();
    // The coordinator runs in this process: the fault is set here, for this checkpoint only.
    process.env.CKPT_FAULT = 'commit:coord:fail';
    try {
      await assert.rejects(job.checkpoint(), (err: Error & { code?: string }) => failedCheckpoint(err) && /phase commit: fault injected at commit \(coordinator\)/.test(err.message));
    } finally {
      delete process.env.CKPT_FAULT;
    }
    noPartial(store);
    assert.deepEqual(listSnapshots(store).map((s) => s.seq), [first.seq]);
    assert.ok((await verifySnapshot(openSnapshot(store))).ok);
    // The next checkpoint after the abort works, and the job ends as an uninterrupted one.
    assert.equal((await job.checkpoint()).seq, first.seq + 1);
    const r = await job.wait();
    assert.equal(r.status, 0, r.error?.message);
    assert.deepEqual(sums, expected);
    assert.deepEqual(await restartToEnd(t, store), expected);
  });

  for (const phase of cp.phases) {
    test(`${crs}: a rank SIGKILLed as the coordinator enters phase ${phase}: no partial snapshot is listed, the newest committed one restarts`, async (t) => {
      if (!(await usable(t))) return;
      const expected = await baseline(t);
      const store = join(tempDir(t), 'store');
      const job = await start(t, store);
      await jobReady(job);
      await job.checkpoint();
      const victim = job.pids[1]!;
      const pending = job.checkpoint({ onPhase: (p) => p === phase && process.kill(victim, 'SIGKILL') });
      if (phase === 'commit') {
        // Every rank was saved: the snapshot is committed and reported (the resume is
        // not waited for); the job then ends because a rank died.
        assert.equal((await pending).seq, 2);
      } else await assert.rejects(pending, failedCheckpoint);
      assert.notEqual((await job.wait()).status, 0);
      noPartial(store);
      const listed = listSnapshots(store);
      assert.ok(listed.length >= 1 && listed[0]!.seq === 1, listed.map((s) => s.seq).join(','));
      for (const s of listed) assert.ok((await verifySnapshot(openSnapshot(s.dir))).ok);
      assert.deepEqual(await restartToEnd(t, store), expected);
    });
  }

  for (const point of cp.rankPoints) {
    test(`${crs}: rank 1 SIGKILLed at its fault point ${point} (CKPT_FAULT=${point}:1:kill@2): the checkpoint fails, the previous snapshot restarts`, async (t) => {
      if (!(await usable(t))) return;
      const expected = await baseline(t);
      const store = join(tempDir(t), 'store');
      // The ranks pass the point in every checkpoint: the second one kills rank 1.
      const job = await start(t, store, { CKPT_FAULT: `${point}:1:kill@2` });
      await jobReady(job);
      assert.equal((await job.checkpoint()).seq, 1);
      await assert.rejects(job.checkpoint(), failedCheckpoint);
      const ended = await job.wait();
      assert.notEqual(ended.status, 0);
      assert.equal(ended.ranks[1]?.signal, 'SIGKILL', JSON.stringify(ended.ranks));
      noPartial(store);
      assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1]);
      assert.ok((await verifySnapshot(openSnapshot(store))).ok);
      // The restart takes CKPT_FAULT from its own environment (none): no fault then.
      assert.deepEqual(await restartToEnd(t, store), expected);
    });
  }

  for (const point of cp.coordKillPoints) {
    test(`${crs}: the coordinator (ckpt run) SIGKILLed at ${point} (CKPT_FAULT=${point}:coord:kill@2): the ranks end, only the committed snapshot is listed and restarts`, async (t) => {
      if (!(await usable(t))) return;
      const expected = await baseline(t);
      const dir = tempDir(t);
      const store = join(dir, 'store');
      const name = `k${crs}${point}`;
      const hold = held(dir);
      const env = { ...cp.env, ...hold.env, ITERS: String(cp.iters), CKPT_STATE_DIR: join(dir, 'state') };
      const run = ckptProgram(['run', '-n', '4', '--crs', crs, '--name', name, '--dir', store, '--', process.execPath, program], { ...env, CKPT_FAULT: `${point}:coord:kill@2` });
      t.after(() => run.kill());
      await waitForListedJob(name, env);
      await hold.reached(run);
      const first = await ckpt(['checkpoint', name, '--json'], env);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(JSON.parse(first.stdout).seq, 1);
      const pids = (openSnapshot(join(store, '000001')).manifest as JobManifest).ranks.map((r) => r.pid);
      const second = await ckpt(['checkpoint', name], env);
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, /^ckpt: .*\[ECKPT_/);
      assert.equal((await run.exited).signal, 'SIGKILL');
      // Without their coordinator the ranks end.
      const running = (pid: number) => !['Z', 'X', undefined].includes(procState(pid));
      assert.ok(await eventually(() => !pids.some(running), 30_000, 50), `ranks left: ${pids.filter(running).join(' ')}`);
      assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1], 'only the committed snapshot is listed');
      // The snapshot was taken at the hold: the restarted job passes it.
      hold.release();
      assert.deepEqual(await restartToEnd(t, store), expected);
    });
  }
}
