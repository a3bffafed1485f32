// `ckpt restart` of a job through the CLI: signals end the restarted job as they
// end `ckpt run` (130/143, no rank left; self and criu); a restarted periodic job
// keeps its --interval/--keep (recorded in its snapshots, overridable); a store
// holds the snapshots of one job (a second job is refused with ECKPT_STORE_IN_USE,
// retention never removes another job's snapshots).
import { test, type TestContext } from 'node:test';
import { EXIT_CHECKPOINTED } from '../../dist/runtime/launcher.js';
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listSnapshots, openSnapshot, verifySnapshot, type ListedSnapshot } from '../../dist/store/store.js';
import { applyRetention } from '../../dist/runtime/checkpoint.js';
import type { JobManifest } from '../../dist/store/manifest.js';
import { alive, assertNoneLeft, ckpt, ckptProgram, needCriu, root, tempDir, type Program } from '../helpers.js';

const ticker = join(root, 'test', 'fixtures', 'jobs', 'ticker.mjs');
const stateEnv = (dir: string) => ({ CKPT_STATE_DIR: join(dir, 'state') });

/** Polls `check` until it gives a value: waits for a condition (bounded), never for a fixed time. */
async function until<T>(what: string, check: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The committed snapshots of a store ([] while it does not exist). */
function snapshots(store: string): ListedSnapshot[] {
  try {
    return listSnapshots(store);
  } catch {
    return [];
  }
}

const jobOf = (s: ListedSnapshot): JobManifest['job'] => (s.manifest as JobManifest).job;

/** `ckpt run` of the ticker fixture; resolves once every rank has joined and said so. */
async function runTicker(t: TestContext, dir: string, args: string[], size = 2): Promise<Program> {
  const run = ckptProgram(['run', '-n', String(size), ...args, '--', process.execPath, ticker], stateEnv(dir));
  t.after(() => run.kill('SIGTERM'));
  for (let r = 0; r < size; r++) await run.waitFor(new RegExp(`^\\[${r}\\] ready ${r} \\d+$`));
  return run;
}

/** `ckpt restart ARGS --json` of a job; resolves with the program and what it printed as JSON. */
async function restartJob(t: TestContext, dir: string, args: string[]): Promise<{ again: Program; facts: any }> {
  const again = ckptProgram(['restart', ...args, '--json'], stateEnv(dir));
  t.after(() => again.kill('SIGTERM'));
  await again.waitFor(/^\}$/);
  const start = again.lines.indexOf('{');
  const facts = JSON.parse(again.lines.slice(start, again.lines.indexOf('}', start) + 1).join('\n'));
  return { again, facts };
}

for (const crs of ['self', 'criu'] as const) {
  test(`${crs}: SIGINT and SIGTERM to ckpt restart of a job end it (exit 130, 143) and leave no rank`, async (t) => {
    if (crs === 'criu' && !(await needCriu(t))) return;
    const dir = tempDir(t);
    const store = join(dir, 'store');
    const name = `sig-${crs}-${process.pid}`;
    const run = await runTicker(t, dir, ['--crs', crs, '--name', name, '--dir', store]);
    const term = await ckpt(['checkpoint', name, '--term', '--json'], stateEnv(dir));
    assert.equal(term.code, 0, term.stderr);
    assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);
    // The same snapshot twice: one restart per signal (criu gets the same pids back each time).
    for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const { again, facts } = await restartJob(t, dir, [store]);
      assert.equal(facts.name, name);
      assert.equal(facts.crs.name, crs);
      const ranks: number[] = facts.pids;
      assert.equal(ranks.length, 2);
      assert.ok(ranks.every((pid) => pid > 1 && alive(pid)), `ranks ${ranks.join(',')} run`);
      again.child.kill(signal);
      const exit = await again.exited;
      assert.equal(exit.code, status, `${signal}: ${again.stderr}`);
      assert.equal(exit.signal, null);
      assert.match(again.stderr, new RegExp(`interrupted \\(${signal}\\) \\[ECKPT_JOB_ABORTED\\]`));
      // ckpt restart returns once every rank has exited and was reaped: none is left.
      for (const pid of ranks) assert.ok(!alive(pid), `rank pid ${pid} is gone after ${signal}`);
    }
  });
}

for (const crs of ['self', 'criu'] as const) {
  test(`${crs}: a job snapshot with a flipped byte restarts with ECKPT_SNAPSHOT_CORRUPT, no rank ran on it or is left; intact, it restarts`, async (t) => {
    if (crs === 'criu' && !(await needCriu(t))) return;
    const dir = tempDir(t);
    const store = join(dir, 'store');
    const name = `corrupt-${crs}-${process.pid}`;
    // Every rank (first run and restart: the job's environment is recorded) carries this mark.
    const mark = { RESTART_VERIFY_MARK: `${name}-${Date.now()}` };
    const run = ckptProgram(['run', '-n', '2', '--crs', crs, '--name', name, '--dir', store, '--', process.execPath, ticker], { ...stateEnv(dir), ...mark });
    t.after(() => run.kill('SIGTERM'));
    for (let r = 0; r < 2; r++) await run.waitFor(new RegExp(`^\\[${r}\\] ready ${r} \\d+$`));
    const term = await ckpt(['checkpoint', name, '--term', '--json'], stateEnv(dir));
    assert.equal(term.code, 0, term.stderr);
    assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);
    const snap = openSnapshot(store);
    const m = snap.manifest as JobManifest;
    // self: the ranks' states (packed, or a rank's own file); criu: a rank's memory.
    const victim = m.files.find((f) => (crs === 'self' ? /(^|\/)(ranks\.pack|state\.(json|bin))$/ : /\/pages-\d+\.img$/).test(f.path) && f.size > 0);
    assert.ok(victim, `a file to damage among ${m.files.map((f) => f.path).join(', ')}`);
    const path = join(snap.dir, victim.path);
    const bytes = readFileSync(path);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(path, bytes);

    const bad = await ckpt(['restart', store], { ...stateEnv(dir), ...mark });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, new RegExp(`${victim.path.replace(/[.]/g, '\\.')}: checksum mismatch.*\\[ECKPT_SNAPSHOT_CORRUPT\\]`));
    // self: a rank prints `ready` once init() returned, which the coordinator's welcome (held until verified) allows.
    assert.doesNotMatch(bad.stdout, /ready/, 'no rank got past init()');
    // criu: the ranks' own pids, restored and held at post-restore, then killed.
    for (const rec of m.ranks) for (const pid of (rec.tree as number[] | undefined) ?? []) assert.ok(crs === 'self' || !alive(pid), `rank pid ${pid} is gone`);
    await assertNoneLeft('RESTART_VERIFY_MARK', mark.RESTART_VERIFY_MARK);

    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(path, bytes);
    const { again, facts } = await restartJob(t, dir, [store]);
    assert.equal(facts.crs.name, crs);
    const ranks: number[] = facts.pids;
    assert.ok(ranks.length === 2 && ranks.every((pid) => pid > 1 && alive(pid)), `ranks ${ranks.join(',')} run`);
    if (crs === 'self') for (let r = 0; r < 2; r++) await again.waitFor(new RegExp(`^\\[${r}\\] ready ${r} \\d+$`));
    again.child.kill('SIGTERM');
    assert.equal((await again.exited).code, 143, again.stderr);
  });
}

test('a restarted periodic job keeps checkpointing with its recorded --interval/--keep; ckpt restart --keep overrides', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const name = `periodic-${process.pid}`;
  const run = await runTicker(t, dir, ['--crs', 'self', '--name', name, '--dir', store, '--interval', '1', '--keep', '3']);
  const first = await until('a periodic snapshot', () => snapshots(store)[0]);
  assert.equal(jobOf(first).intervalMs, 1000);
  assert.equal(jobOf(first).keep, 3);
  const term = await ckpt(['checkpoint', name, '--term', '--json'], stateEnv(dir));
  assert.equal(term.code, 0, term.stderr);
  const last = JSON.parse(term.stdout).seq as number;
  assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);

  // No options: the restarted job checkpoints every second and keeps 3, as recorded.
  const { again } = await restartJob(t, dir, [store]);
  const next = await until('a snapshot of the restarted job', () => snapshots(store).find((s) => s.seq > last + 1));
  assert.equal(jobOf(next).name, name);
  assert.equal(jobOf(next).intervalMs, 1000);
  assert.equal(jobOf(next).keep, 3);
  assert.equal(next.manifest!.endState, 'continue');
  again.child.kill('SIGTERM');
  assert.equal((await again.exited).code, 143, again.stderr);
  const kept = snapshots(store);
  assert.ok(kept.length >= 1 && kept.length <= 3, `kept ${kept.map((s) => s.seq).join(',')}`);
  const newest = kept.at(-1)!.seq;

  // --keep 1 overrides the recorded retention (and is recorded in turn); the interval stays.
  const { again: third } = await restartJob(t, dir, [store, '--keep', '1']);
  const later = await until('a snapshot with --keep 1', () => snapshots(store).find((s) => s.seq > newest));
  assert.equal(jobOf(later).keep, 1);
  assert.equal(jobOf(later).intervalMs, 1000);
  third.child.kill('SIGINT');
  assert.equal((await third.exited).code, 130, third.stderr);
  assert.equal(snapshots(store).length, 1, 'retention kept the newest one');
});

test('two jobs on one store: the second is refused with ECKPT_STORE_IN_USE; the first job\'s snapshots stay', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const a = `first-${process.pid}`;
  const run = await runTicker(t, dir, ['--crs', 'self', '--name', a, '--dir', store]);
  for (let i = 0; i < 2; i++) {
    const cp = await ckpt(['checkpoint', a, '--json'], stateEnv(dir));
    assert.equal(cp.code, 0, cp.stderr);
  }
  const second = (args: string[]) =>
    ckpt(['run', '-n', '2', '--crs', 'self', ...args, '--dir', store, '--interval', '1', '--keep', '1', '--', process.execPath, ticker], stateEnv(dir));
  // While the first runs: another name, the same name, no name — all refused before any rank starts.
  for (const named of [['--name', `second-${process.pid}`], ['--name', a], []]) {
    const r = await second(named);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^ckpt: snapshot store .* is in use by job .*\[ECKPT_STORE_IN_USE\]/);
    assert.doesNotMatch(r.stdout, /ready/);
  }
  const term = await ckpt(['checkpoint', a, '--term'], stateEnv(dir));
  assert.equal(term.code, 0, term.stderr);
  assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);
  // The first job is gone, its snapshots are still its own: another job is refused.
  const r = await second(['--name', `second-${process.pid}`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`holds snapshots of job '${a}'.*\\[ECKPT_STORE_IN_USE\\]`));
  const listed = snapshots(store);
  assert.deepEqual(listed.map((s) => s.seq), [1, 2, 3]);
  for (const s of listed) {
    assert.equal(jobOf(s).name, a);
    assert.ok((await verifySnapshot(openSnapshot(s.dir))).ok);
  }

  // Retention counts and removes only its own job's snapshots: one of another job
  // (a copy of seq 3 under another name, as an older ckpt could have left) stays.
  cpSync(join(store, '000003'), join(store, '000004'), { recursive: true });
  const manifestPath = join(store, '000004', 'manifest.json');
  const other = JSON.parse(readFileSync(manifestPath, 'utf8'));
  other.seq = 4;
  other.job.name = 'someone-else';
  writeFileSync(manifestPath, JSON.stringify(other));
  assert.deepEqual(applyRetention(store, 1, a), [1, 2]);
  assert.deepEqual(snapshots(store).map((s) => [s.seq, jobOf(s).name]), [[3, a], [4, 'someone-else']]);
  assert.ok(readdirSync(store).every((n) => !n.startsWith('.partial')));
});

test('ckpt restart of a job into its own store is allowed, with --interval given; --keep 0 is a usage error', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const name = `own-${process.pid}`;
  const run = await runTicker(t, dir, ['--crs', 'self', '--name', name, '--dir', store]);
  assert.equal((await ckpt(['checkpoint', name, '--term'], stateEnv(dir))).code, 0);
  assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);
  const { again, facts } = await restartJob(t, dir, [store, '--interval', '1']);
  assert.equal(facts.name, name);
  // The restart checkpoints into its own store (the interval given here), numbering on.
  const next = await until('a periodic snapshot of the restart', () => snapshots(store).find((s) => s.seq === 2));
  assert.equal(jobOf(next).intervalMs, 1000);
  again.child.kill('SIGINT');
  assert.equal((await again.exited).code, 130, again.stderr);
  const bad = await ckpt(['restart', store, '--keep', '0'], stateEnv(dir));
  assert.equal(bad.code, 2, bad.stderr);
});
