// `ckpt checkpoint --pid P --interval S --keep K`: a process checkpointed every S
// seconds until it exits; the newest K snapshots stay, and each restores. Ctrl-C ends
// the series between checkpoints. Snapshots are counted by polling the store (a
// generous deadline), never by waiting a fixed time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { keptNewest, listedSnapshots as snapshots, newestSeq, tickOf } from '../helpers/snapshots.js';
import type { ProcessManifest } from '../../dist/store/manifest.js';
import { alive, ckpt, ckptProgram, eventually, fixture, needCriu, procState, Program, tempDir } from '../helpers.js';


test('--interval 1 --keep 2: a snapshot every second until the process exits (exit 0); the newest 2 stay and each restores', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  const program = new Program(fixture('process/ticker.sh'), ['1000000'], {}, { session: true });
  t.after(() => program.kill());
  await program.waitFor(/^tick 5$/);
  const periodic = ckptProgram(['checkpoint', '--pid', String(program.pid), '--dir', store, '--interval', '1', '--keep', '2']);
  t.after(() => periodic.kill('SIGTERM'));
  assert.ok(await eventually(() => newestSeq(store) >= 3, 180_000, 100), `3 snapshots taken: ${periodic.lines.join(' | ')} ${periodic.stderr}`);
  await program.kill();
  const exit = await periodic.exited;
  assert.equal(exit.code, 0, periodic.stderr);
  assert.match(periodic.lines.at(-1) ?? '', new RegExp(`^pid ${program.pid} exited: \\d+ checkpoint\\(s\\) taken`));
  assert.ok(periodic.lines.some((l) => /removed seq 1\b/.test(l)), `retention said what it removed: ${periodic.lines.join(' | ')}`);

  const kept = keptNewest(store, 2);
  let previous = 0;
  for (const s of kept) {
    const restarted = ckptProgram(['restart', store, '--seq', String(s.seq)]);
    const tree = (s.manifest as ProcessManifest).process.tree;
    // The restored tree has its original pids back, its root leading its own group: ended through it.
    const root = tree[0]!;
    assert.ok(root > 1);
    const end = () => {
      try {
        process.kill(-root, 'SIGKILL');
      } catch {
        // gone
      }
    };
    t.after(end);
    const first = tickOf(await restarted.waitFor(/^tick \d+$/, 120_000));
    assert.ok(first > previous, `seq ${s.seq} restores at tick ${first}, after ${previous}`);
    previous = first;
    end();
    assert.equal((await restarted.exited).code, 128 + 9, restarted.stderr);
    // Its pids are free again before the next restore.
    assert.ok(await eventually(() => tree.every((pid) => !alive(pid)), 30_000), 'the restored tree is gone');
  }
});

test('Ctrl-C between checkpoints ends the series at once (130, one line); the process runs on, untouched', async (t) => {
  const store = join(tempDir(t), 'store');
  const program = new Program(fixture('process/ticker.sh'), ['1000000'], {}, { session: true });
  t.after(() => program.kill());
  await program.waitFor(/^tick 2$/);
  const periodic = ckptProgram(['checkpoint', '--pid', String(program.pid), '--dir', store, '--interval', '3600']);
  t.after(() => periodic.kill('SIGTERM'));
  assert.ok(await eventually(() => periodic.stderr.includes(`checkpointing pid ${program.pid} every 3600 s`)), periodic.stderr);
  periodic.child.kill('SIGINT');
  const exit = await periodic.exited;
  assert.equal(exit.code, 130, periodic.stderr);
  assert.match(periodic.lines.at(-1) ?? '', /^interrupted \(SIGINT\): 0 checkpoint\(s\) taken$/);
  assert.ok(alive(program.pid) && procState(program.pid) !== 'T', 'the process runs on');
  assert.deepEqual(snapshots(store), []);
});

test('bad input: --keep without --interval, --interval with --stop, --interval for a job (exit 2, one line)', async () => {
  const pid = String(process.pid);
  for (const [args, re] of [
    [['--pid', pid, '--dir', '/nonexistent', '--keep', '2'], /--keep goes with --interval/],
    [['--pid', pid, '--dir', '/nonexistent', '--interval', '1', '--stop'], /--interval leaves the process running/],
    [['--pid', pid, '--dir', '/nonexistent', '--interval', '0'], /--interval takes a whole number (of seconds )?≥ 1/],
    [['somejob', '--interval', '5'], /ckpt run --interval/],
  ] as const) {
    const r = await ckpt(['checkpoint', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});
