// Housekeeping of a store: the partial directories of dead writers are swept (by
// `ckpt snapshots gc` and by the next write), never a live writer's, never another
// host's, never an entry not named as a partial, and no link is followed; restore
// logs are kept for failures and for the newest K successes only.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beginSnapshot, collectGarbage } from '../../dist/store/store.js';
import { markSucceeded, pruneRestoreLogs, pruneWhileRestoring, restoreSucceeded, RESTORE_SUCCEEDED } from '../../dist/util/restore-logs.js';
import { ckpt, Program, tempDir } from '../helpers.js';

async function deadPid(): Promise<number> {
  const p = spawn('true');
  await once(p, 'exit');
  return p.pid!;
}

/** A store with: a dead writer's partial (8 KB), a live writer's, a reused pid's, another host's, and decoys. */
async function litteredStore(t: TestContext) {
  const base = tempDir(t);
  const store = join(base, 'store');
  const live = beginSnapshot(store);
  const host = hostname();
  const dead = join(store, `.partial-000007-abcd1234-${await deadPid()}@${host}`);
  mkdirSync(join(dead, 'images'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dead, 'images', 'pages-1.img'), Buffer.alloc(4096, 1));
  writeFileSync(join(dead, 'images', 'core-1.img'), Buffer.alloc(4096, 2));
  // Links inside a dead partial are removed, never followed.
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'precious'), 'keep me');
  symlinkSync(outside, join(dead, 'images', 'link-to-dir'));
  symlinkSync(join(outside, 'precious'), join(dead, 'link-to-file'));
  // A link named as a partial is not a partial: kept, its target untouched.
  const linked = join(store, `.partial-000008-abcd1234-${await deadPid()}@${host}`);
  symlinkSync(outside, linked);
  // A pid now running, but started after the partial was last changed: not its writer.
  const sleeper = new Program('sleep', ['600']);
  t.after(() => sleeper.kill());
  const reused = join(store, `.partial-000009-abcd1234-${sleeper.pid}@${host}`);
  mkdirSync(reused, { mode: 0o700 });
  const old = new Date(Date.now() - 3600_000);
  utimesSync(reused, old, old);
  // Not ours to judge: another host's writer, a partial without a writer, other names.
  const elsewhere = join(store, `.partial-000010-abcd1234-${await deadPid()}@not-${host}`);
  const untagged = join(store, '.partial-000011-abcd1234');
  const other = join(store, '.partial-junk');
  for (const d of [elsewhere, untagged, other]) mkdirSync(d, { mode: 0o700 });
  return { store, live, dead, linked, outside, reused, kept: [live.path, linked, elsewhere, untagged, other] };
}

test('snapshots gc: dead writers\' partials go (with their sizes), links are not followed, the rest stays', async (t) => {
  const s = await litteredStore(t);
  const dry = await ckpt(['snapshots', 'gc', '--dir', s.store, '--dry-run', '--json']);
  assert.equal(dry.code, 0, dry.stderr);
  const planned = JSON.parse(dry.stdout);
  assert.equal(planned.ok, true);
  assert.equal(planned.dryRun, true);
  assert.deepEqual(planned.removed.map((r: { path: string }) => r.path).sort(), [s.dead, s.reused].sort());
  assert.ok(existsSync(s.dead) && existsSync(s.reused), 'a dry run removes nothing');

  const gc = await ckpt(['snapshots', 'gc', s.store, '--json']);
  assert.equal(gc.code, 0, gc.stderr);
  const out = JSON.parse(gc.stdout);
  assert.deepEqual(Object.keys(out).sort(), ['bytes', 'ok', 'removed']);
  const byPath = new Map(out.removed.map((r: { path: string; bytes: number }) => [r.path, r.bytes]));
  assert.equal(byPath.get(s.dead), 8192);
  assert.equal(byPath.get(s.reused), 0);
  assert.equal(out.bytes, 8192);
  assert.ok(!existsSync(s.dead) && !existsSync(s.reused));
  for (const k of s.kept) assert.ok(existsSync(k), `${k} is kept`);
  assert.equal(readFileSync(join(s.outside, 'precious'), 'utf8'), 'keep me', 'nothing followed through a link');
  assert.deepEqual(readdirSync(s.outside), ['precious']);

  const again = await ckpt(['snapshots', 'gc', s.store]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, 'nothing to remove\n');
});

test('snapshots gc says what it removed in human units; the next write sweeps too', async (t) => {
  const s = await litteredStore(t);
  const gc = await ckpt(['snapshots', 'gc', s.store]);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, new RegExp(`^removed ${s.dead.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(8\\.19 kB\\)$`, 'm'));
  assert.match(gc.stdout, /^removed 2 abandoned partial snapshots, 8\.19 kB$/m);

  const t2 = await litteredStore(t);
  const next = beginSnapshot(t2.store);
  assert.ok(!existsSync(t2.dead) && !existsSync(t2.reused), 'swept by the next write');
  for (const k of t2.kept) assert.ok(existsSync(k), `${k} is kept`);
  assert.ok(existsSync(next.path));
});

test('collectGarbage refuses a store writable by others', (t) => {
  const store = join(tempDir(t), 'open');
  mkdirSync(store);
  chmodSync(store, 0o777);
  assert.throws(() => collectGarbage(store), (err: { code?: string }) => err.code === 'ECKPT_SNAPSHOT_OWNER');
});

/** A state directory of the test's own (CKPT_STATE_DIR, put back after); its logs folder. */
function logsOfState(t: TestContext): string {
  const state = tempDir(t);
  const prev = process.env.CKPT_STATE_DIR;
  process.env.CKPT_STATE_DIR = state;
  t.after(() => (prev === undefined ? delete process.env.CKPT_STATE_DIR : (process.env.CKPT_STATE_DIR = prev)));
  const logs = join(state, 'logs');
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  return logs;
}

test('restore logs: failures are kept, successes only the newest K and never a running one', (t) => {
  const logs = logsOfState(t);
  const make = (name: string, ageS: number, pids?: number[]) => {
    mkdirSync(join(logs, name), { mode: 0o700 });
    writeFileSync(join(logs, name, 'restore.log'), 'log');
    if (pids) {
      writeFileSync(join(logs, name, RESTORE_SUCCEEDED), `${pids.join(' ')}\n`);
      const at = new Date(Date.now() - ageS * 1000);
      utimesSync(join(logs, name, RESTORE_SUCCEEDED), at, at);
    }
  };
  for (let i = 0; i < 14; i++) make(`restore-${i}`, 1000 - i, [999_999_999]);
  make('restore-failed-old', 5000);
  make('restore-running-old', 6000, [process.pid]);
  const removed = pruneRestoreLogs(10);
  assert.deepEqual(removed.sort(), ['restore-0', 'restore-1', 'restore-2', 'restore-3']);
  const left = readdirSync(logs);
  for (let i = 4; i < 14; i++) assert.ok(left.includes(`restore-${i}`));
  assert.ok(left.includes('restore-failed-old'), 'a failure is kept');
  assert.ok(left.includes('restore-running-old'), 'a restored process still running keeps its log');

  // A new success marks its folder and prunes: the oldest of the others goes.
  make('restore-new', 0);
  restoreSucceeded(join(logs, 'restore-new'), [999_999_998]);
  assert.ok(existsSync(join(logs, 'restore-new', RESTORE_SUCCEEDED)));
  assert.ok(!existsSync(join(logs, 'restore-4')), 'the oldest success beyond 10 goes');
  assert.ok(existsSync(join(logs, 'restore-5')));
});

test('restore logs: failures beyond the newest K go once older than an hour; a younger one (maybe under way) stays', (t) => {
  const logs = logsOfState(t);
  const failure = (name: string, ageS: number) => {
    mkdirSync(join(logs, name), { mode: 0o700 });
    writeFileSync(join(logs, name, 'restore.log'), 'Error (criu/cr-restore.c:1): …');
    const at = new Date(Date.now() - ageS * 1000);
    utimesSync(join(logs, name), at, at);
  };
  for (let i = 0; i < 8; i++) failure(`restore-old-${i}`, 7200 + i);
  for (let i = 0; i < 3; i++) failure(`restore-young-${i}`, 60 + i);
  // Keep 2 failures: the 3 young ones are the newest; of the old ones all go (none is among the newest 2).
  const removed = pruneRestoreLogs(10, 2);
  assert.deepEqual(removed.sort(), [...Array(8).keys()].map((i) => `restore-old-${i}`).sort());
  assert.deepEqual(readdirSync(logs).sort(), ['restore-young-0', 'restore-young-1', 'restore-young-2']);
});

test('restore logs: a restore under way prunes the others to KEEP - 1, in slices, then only marks its own', async (t) => {
  const state = tempDir(t);
  const prev = { dir: process.env.CKPT_STATE_DIR, keep: process.env.CKPT_RESTORE_LOGS_KEEP };
  process.env.CKPT_STATE_DIR = state;
  process.env.CKPT_RESTORE_LOGS_KEEP = '3';
  t.after(() => {
    for (const [k, v] of [['CKPT_STATE_DIR', prev.dir], ['CKPT_RESTORE_LOGS_KEEP', prev.keep]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const logs = join(state, 'logs');
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  // More folders than one slice: failures (no mark) among the successes.
  for (let i = 0; i < 300; i++) {
    const name = `restore-${i}`;
    mkdirSync(join(logs, name), { mode: 0o700 });
    if (i % 50 !== 0) continue;
    writeFileSync(join(logs, name, RESTORE_SUCCEEDED), '999999999\n');
    const at = new Date(Date.now() - (1000 - i) * 1000);
    utimesSync(join(logs, name, RESTORE_SUCCEEDED), at, at);
  }
  mkdirSync(join(logs, 'restore-mine'), { mode: 0o700 }); // the restore under way: no mark yet
  await pruneWhileRestoring();
  const successes = (): string[] => readdirSync(logs).filter((n) => existsSync(join(logs, n, RESTORE_SUCCEEDED))).sort();
  assert.deepEqual(successes(), ['restore-200', 'restore-250'], 'the newest KEEP - 1 others stay');
  assert.equal(readdirSync(logs).length, 300 - 4 + 1, 'failures and the restore under way are kept');
  assert.equal(markSucceeded(join(logs, 'restore-mine'), [999_999_998]), true);
  assert.deepEqual(successes(), ['restore-200', 'restore-250', 'restore-mine'], 'marking prunes nothing: KEEP stay');
});
