// A Node program checkpoints itself with checkpoint(), continues, is killed, and
// `ckpt restart` brings it back: it observes `restart` and counts on from the snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, fixture, needCriu, Program, tempDir } from '../helpers.js';

const counter = fixture('process/counter.mjs');

async function cycle(t: import('node:test').TestContext, crs: 'criu' | 'self' | 'none') {
  const store = join(tempDir(t), 'store');
  const original = new Program(process.execPath, [counter, store, crs]);
  t.after(() => original.kill());
  assert.match(await original.waitFor(/^continue /), /^continue counter=5 seq=1$/);
  await original.waitFor(/^waiting$/);
  assert.ok(original.lines.includes(`hook continue pid=${original.pid}`), 'continue hook ran in the original');
  await original.kill('SIGKILL');

  const restarted = ckptProgram(['restart', store]);
  t.after(() => restarted.kill());
  const exit = await restarted.exited;
  assert.equal(exit.code, 0, `ckpt restart failed: ${restarted.stderr}`);
  return { store, original, restarted };
}

test('criu: a Node program checkpoints itself, is killed, and restarts from its snapshot', async (t) => {
  if (!(await needCriu(t))) return;
  const { store, original, restarted } = await cycle(t, 'criu');
  const out = restarted.lines;
  // The restored process wakes inside checkpoint(), in the other world.
  assert.equal(out[0], `hook restart pid=${original.pid} previousPid=${original.pid} host=${out[0]!.split('host=')[1]}`);
  assert.equal(out[1], 'restart counter=5 seq=1');
  assert.deepEqual(out.slice(2), ['count 6', 'count 7', 'count 8', 'count 9', 'count 10', 'done']);

  // The snapshot is private and records its checkpointer.
  const seqDir = join(store, '000001');
  assert.equal(statSync(store).mode & 0o777, 0o700);
  assert.equal(statSync(seqDir).mode & 0o777, 0o700);
  for (const f of readdirSync(join(seqDir, 'images'))) assert.equal(statSync(join(seqDir, 'images', f)).mode & 0o777, 0o600, f);
  const inspect = JSON.parse((await ckpt(['snapshots', 'inspect', store, '--json'])).stdout);
  assert.equal(inspect.manifest.crs.name, 'criu');
  assert.match(inspect.manifest.crs.version, /^4\.\d+/);
  assert.equal(inspect.manifest.origin, 'self');
  assert.equal(inspect.manifest.process.pid, original.pid);
  assert.ok(inspect.manifest.files.length > 5);
});

test('self: restart starts the program afresh and load() hands it its state', async (t) => {
  const { original, restarted } = await cycle(t, 'self');
  const out = restarted.lines;
  const hook = out[0]!;
  assert.match(hook, /^hook restart pid=\d+ previousPid=\d+ host=/);
  assert.match(hook, new RegExp(`previousPid=${original.pid} `));
  assert.notEqual(Number(/pid=(\d+)/.exec(hook)![1]), original.pid, 'a fresh process has a new pid');
  assert.equal(out[1], 'restart counter=5 seq=1');
  assert.deepEqual(out.slice(2), ['count 6', 'count 7', 'count 8', 'count 9', 'count 10', 'done']);
});

test('none: restart runs the program again from the beginning', async (t) => {
  const { restarted } = await cycle(t, 'none');
  assert.equal(restarted.lines[1], 'restart counter=0 seq=1');
  assert.equal(restarted.lines.at(-1), 'done');
});

test('criu: a restarted process can checkpoint again, and restart picks the newest snapshot', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  const env = { COUNT_AT: '3', COUNT_END: '6' };
  const first = new Program(process.execPath, [counter, store, 'criu'], env);
  t.after(() => first.kill());
  await first.waitFor(/^waiting$/);
  await first.kill();
  // The restored copy goes on to 6, exits; checkpoint again from a new run to get seq 2.
  const again = ckptProgram(['restart', store]);
  assert.equal((await again.exited).code, 0, again.stderr);
  assert.equal(again.lines.at(-1), 'done');
  const second = new Program(process.execPath, [counter, store, 'criu'], env);
  t.after(() => second.kill());
  assert.equal(await second.waitFor(/^continue /), 'continue counter=3 seq=2');
  await second.kill();
  const list = JSON.parse((await ckpt(['snapshots', 'ls', store, '--json'])).stdout);
  assert.deepEqual(list.snapshots.map((s: { seq: number }) => s.seq), [1, 2]);
  const fromFirst = ckptProgram(['restart', store, '--seq', '1']);
  assert.equal((await fromFirst.exited).code, 0, fromFirst.stderr);
  assert.equal(fromFirst.lines[1], 'restart counter=3 seq=1');
});
