// `ckpt run --isolate --interval S --keep K`: the whole tree checkpointed every S
// seconds into the job's store, the newest K kept; each of them restores. Snapshots
// are counted by polling the store (a generous deadline), never by a fixed wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { keptNewest, listedSnapshots, newestSeq, tickOf } from '../helpers/snapshots.js';
import { ckpt, ckptProgram, eventually, fixture, needCriu, tempDir } from '../helpers.js';


test('--isolate --interval 1 --keep 2: the tree is checkpointed every second, left running; the newest 2 stay and each restores', async (t) => {
  if (!(await needCriu(t))) return;
  // Outside /tmp: /tmp is private inside an isolated job.
  const build = mkdtempSync('/var/tmp/ckpt-iso-periodic-');
  t.after(() => rmSync(build, { recursive: true, force: true }));
  const exe = join(build, 'ticker');
  execFileSync('gcc', ['-O2', '-o', exe, fixture('process/ticker.c')]);
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state') };
  const name = `periodic-${process.pid}`;
  const store = join(env.CKPT_STATE_DIR, 'snapshots', name);
  const job = ckptProgram(['run', '--isolate', '--name', name, '--interval', '1', '--keep', '2', '--', exe, '1000000'], env, build);
  t.after(() => job.kill());
  await job.waitFor(/^tick 5$/);
  assert.ok(await eventually(() => newestSeq(store) >= 3, 180_000, 100), `3 snapshots taken: ${job.stderr}`);
  const atThird = Math.max(...job.lines.map(tickOf).filter((n) => n > 0));
  await job.waitFor(new RegExp(`^tick ${atThird + 5}$`));
  assert.equal((await ckpt(['kill', name], env)).code, 0);
  await job.exited;

  const kept = keptNewest(store, 2);
  // Each restores (--interval 0: without its recorded schedule, which would take and prune snapshots meanwhile).
  let previous = 0;
  for (const s of kept) {
    const restarted = ckptProgram(['restart', s.dir, '--interval', '0'], env);
    t.after(() => restarted.kill('SIGTERM'));
    const first = tickOf(await restarted.waitFor(/^tick \d+$/, 120_000));
    assert.ok(first > previous, `seq ${s.seq} restores at tick ${first}, after ${previous}`);
    previous = first;
    // The restored job is registered under its name again: ended as any job is.
    assert.equal((await ckpt(['kill', name], env)).code, 0);
    await restarted.exited;
  }

  // A plain restart goes on with the recorded --interval 1 --keep 2: new snapshots, still the newest 2 kept.
  const top = newestSeq(store);
  const resumed = ckptProgram(['restart', store], env);
  t.after(() => resumed.kill('SIGTERM'));
  await resumed.waitFor(/^tick \d+$/, 120_000);
  assert.ok(await eventually(() => newestSeq(store) >= top + 2, 180_000, 100), `periodic checkpoints after the restart: ${resumed.stderr}`);
  assert.ok(await eventually(() => listedSnapshots(store).length === 2, 60_000, 100), `the newest 2 kept: ${listedSnapshots(store).map((x) => x.seq).join(', ')}`);
  assert.equal((await ckpt(['kill', name], env)).code, 0);
  await resumed.exited;
});

test('--isolate: --keep without --interval, --interval 0 are usage errors (exit 2)', async (t) => {
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state') };
  for (const [args, re] of [
    [['--keep', '2'], /--keep goes with --interval/],
    [['--interval', '0'], /--interval takes a whole number (of seconds )?≥ 1/],
  ] as const) {
    const r = await ckpt(['run', '--isolate', ...args, '--', '/bin/true'], env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});
