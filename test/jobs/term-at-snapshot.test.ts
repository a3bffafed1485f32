// A checkpoint that ends the job (`ckpt checkpoint JOB --term`, then: 'terminate')
// ends every rank at its snapshot: no rank runs its program past the state it
// saved (self: it exits from its safe point; criu: it stays frozen after its dump
// and is killed after the commit). So the output of a checkpoint-terminate-restart
// run is, rank by rank and line for line, the output of an uninterrupted run — 20
// times in a row with each checkpointer. The fixture (test/fixtures/jobs/numbered.mjs)
// prints a numbered line per iteration and, like many programs, finishes the
// iteration it is in on SIGTERM: a rank let go after its snapshot and then sent
// SIGTERM (the old way) prints at least one line twice. Files steer it, not time:
// it is released to print as its state is taken (self: at the checkpoint's first
// phase; criu: once its dump has ended), and waits at the end until the test lets
// the restarted job finish.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CHECKPOINTED, launchJob } from '../../dist/runtime/launcher.js';
import { restartSnapshot } from '../../dist/process/restart.js';
import { eventually, fixture, needCriu, tempDir } from '../helpers.js';
import { TextSink } from './exchange.js';

const SIZE = 2;
const LINES = 14;
const TRIALS = Number(process.env.CKPT_TERM_TRIALS ?? 20);

interface Files {
  MARK_FILE: string;
  RELEASE_FILE: string;
  END_FILE: string;
}

function files(dir: string): Files {
  mkdirSync(dir, { recursive: true });
  return { MARK_FILE: join(dir, 'mark'), RELEASE_FILE: join(dir, 'release'), END_FILE: join(dir, 'end') };
}

/** Output sinks of a job: stdout lines come [rank]-prefixed. */
function sinks() {
  const stdout = new TextSink();
  const stderr = new TextSink();
  return { output: { mode: 'prefix', stdout, stderr } as const, stdout, stderr };
}

/** Each rank's stdout lines, in order, from [rank]-prefixed text. */
function byRank(...texts: string[]): string[][] {
  const out: string[][] = Array.from({ length: SIZE }, () => []);
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const m = /^\[(\d+)\] (.*)$/.exec(line);
      if (m) out[Number(m[1])]!.push(m[2]!);
    }
  }
  return out;
}

async function start(t: TestContext, crs: 'self' | 'criu', store: string, f: Files, name: string) {
  const s = sinks();
  const job = await launchJob({
    command: process.execPath,
    args: [fixture('jobs/numbered.mjs')],
    size: SIZE,
    name,
    crs,
    store,
    register: false,
    output: s.output,
    env: { LINES: String(LINES), MARK: '2', ...f },
  });
  t.after(() => job.kill());
  return { job, ...s };
}

/** The output of an uninterrupted run (every gate open from the start). */
async function reference(t: TestContext, crs: 'self' | 'criu'): Promise<string[][]> {
  const dir = tempDir(t);
  const f = files(join(dir, 'files'));
  writeFileSync(f.RELEASE_FILE, '');
  writeFileSync(f.END_FILE, '');
  const { job, stdout, stderr } = await start(t, crs, join(dir, 'store'), f, `ref${process.pid}${crs}`);
  const result = await job.wait();
  assert.equal(result.status, 0, `${result.error?.message ?? ''}\n${stderr.text}`);
  const lines = byRank(stdout.text);
  for (let r = 0; r < SIZE; r++) assert.equal(lines[r]!.length, LINES + 1, `rank ${r}: ${lines[r]!.join(' | ')}`);
  return lines;
}

/** Every rank's CRIU dump into the partial snapshot in `store` has ended (or `over()`). */
async function whenDumped(store: string, over: () => boolean): Promise<void> {
  const dumped = (): boolean => {
    const partial = existsSync(store) ? readdirSync(store).filter((n) => n.startsWith('.partial-')) : [];
    return partial.some((p) => [...Array(SIZE).keys()].every((r) => existsSync(join(store, p, `rank-${r}`, 'images', 'stats-dump'))));
  };
  await eventually(() => over() || dumped(), 120_000, 5);
}

/** Start, checkpoint with terminate while the ranks print, restart, finish: each rank's output before and after. */
async function trial(t: TestContext, crs: 'self' | 'criu', dir: string, n: number): Promise<string[][]> {
  const f = files(join(dir, `files-${n}`));
  const store = join(dir, `store-${n}`);
  const first = await start(t, crs, store, f, `term${process.pid}${crs}${n}`);
  assert.ok(await eventually(() => existsSync(f.MARK_FILE), 60_000), 'rank 0 reached its mark');
  // The ranks are let go on printing once their state is taken, or about to be: self at
  // the checkpoint's first phase; criu once every rank's dump has ended (CRIU writes
  // `stats-dump` last). A rank that ran on past its snapshot would print lines the
  // restarted job prints again.
  let settled = false;
  if (crs === 'criu') void whenDumped(store, () => settled).then(() => writeFileSync(f.RELEASE_FILE, ''));
  const checkpoint = first.job.checkpoint({ then: 'terminate', onPhase: (p) => crs === 'self' && p === 'prepare' && writeFileSync(f.RELEASE_FILE, '') });
  const snap = await checkpoint.finally(() => (settled = true));
  const ended = await first.job.wait();
  assert.equal(ended.status, EXIT_CHECKPOINTED, `${ended.error?.message ?? ''}\n${first.stderr.text}`);
  // self: each rank exited from its safe point; criu: each was killed where its dump froze it.
  const how = ended.ranks.map((r) => (r.signal ? r.signal : `status ${r.code}`));
  assert.deepEqual(how, Array(SIZE).fill(crs === 'self' ? `status ${EXIT_CHECKPOINTED}` : 'SIGKILL'));
  writeFileSync(f.END_FILE, '');
  const again = sinks();
  const restarted = await restartSnapshot(snap.dir, { job: { output: again.output, register: false } });
  const job = restarted.process.job!;
  t.after(() => job.kill());
  const result = await job.wait();
  assert.equal(result.status, 0, `${result.error?.message ?? ''}\n${again.stderr.text}`);
  return byRank(first.stdout.text, again.stdout.text);
}

async function trials(t: TestContext, crs: 'self' | 'criu'): Promise<void> {
  const expected = await reference(t, crs);
  const dir = tempDir(t);
  for (let n = 1; n <= TRIALS; n++) {
    const got = await trial(t, crs, dir, n);
    assert.deepEqual(got, expected, `trial ${n} of ${TRIALS} (${crs}): the output differs from an uninterrupted run`);
  }
}

/** A terminate checkpoint whose commit fails: no rank is ended; they go on (criu: continued from frozen) to the uninterrupted output. */
async function failedCommit(t: TestContext, crs: 'self' | 'criu'): Promise<void> {
  const expected = await reference(t, crs);
  const dir = tempDir(t);
  const f = files(join(dir, 'files'));
  const { job, stdout, stderr } = await start(t, crs, join(dir, 'store'), f, `fail${process.pid}${crs}`);
  assert.ok(await eventually(() => existsSync(f.MARK_FILE), 60_000), 'rank 0 reached its mark');
  // The coordinator runs in this process: the fault is set here, for this checkpoint only.
  process.env.CKPT_FAULT = 'commit:coord:fail';
  try {
    await assert.rejects(
      // Let go at the checkpoint's first phase (criu has no prepare round: its first is the dump).
      job.checkpoint({ then: 'terminate', onPhase: (p) => (p === 'prepare' || p === 'dump') && writeFileSync(f.RELEASE_FILE, '') }),
      (err: Error & { code?: string }) => err.code === 'ECKPT_CHECKPOINT_FAILED' && /phase commit: fault injected/.test(err.message),
    );
  } finally {
    delete process.env.CKPT_FAULT;
  }
  writeFileSync(f.END_FILE, '');
  const result = await job.wait();
  assert.equal(result.status, 0, `${result.error?.message ?? ''}\n${stderr.text}`);
  assert.deepEqual(byRank(stdout.text), expected);
}

test('self: a terminate checkpoint whose commit fails (CKPT_FAULT=commit:coord:fail) ends no rank: the job goes on to the uninterrupted output', async (t) => {
  await failedCommit(t, 'self');
});

test('criu: a terminate checkpoint whose commit fails (CKPT_FAULT=commit:coord:fail): the frozen ranks are continued and the job goes on to the uninterrupted output', async (t) => {
  if (!(await needCriu(t))) return;
  await failedCommit(t, 'criu');
});

test(`self: ${TRIALS} checkpoint-terminate-restart runs print exactly what an uninterrupted run prints`, async (t) => {
  await trials(t, 'self');
});

test(`criu: ${TRIALS} checkpoint-terminate-restart runs print exactly what an uninterrupted run prints`, async (t) => {
  if (!(await needCriu(t))) return;
  await trials(t, 'criu');
});
