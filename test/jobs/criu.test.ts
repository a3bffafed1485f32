// What only the criu checkpointer has (reliability.test.ts runs the scenarios it
// shares with self): the coordinator SIGKILLed while every rank stands dumped —
// its images complete, not yet rejoined — leaves no snapshot listed, and the ranks end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { listSnapshots, openSnapshot } from '../../dist/store/store.js';
import type { JobManifest } from '../../dist/store/manifest.js';
import { ckpt, ckptProgram, eventually, faultEnv, gate, needCriu, procState, tempDir, waitForListedJob } from '../helpers.js';
import { collect, held, program, restartToEnd, startExchange, uninterrupted } from './exchange.js';

const criu = { crs: 'criu', iters: 6000, name: `c${process.pid}`, env: { NO_SAFEPOINT: '1' } } as const;

/** Running (a zombie waiting to be reaped no longer runs anything). */
const running = (pid: number): boolean => !['Z', 'X', undefined].includes(procState(pid));

test('criu with its OOB over TCP: each rank rejoins on a new connection after its dump, taken once the coordinator proves the job secret back; 3 checkpoint-and-continue cycles end exactly', async (t) => {
  if (!(await needCriu(t))) return;
  const expected = await uninterrupted(t, criu);
  const store = join(tempDir(t), 'store');
  const job = await startExchange(t, store, { ...criu, oob: 'tcp' });
  const sums = collect(job);
  const phases: string[] = [];
  for (let i = 1; i <= 3; i++) assert.equal((await job.checkpoint({ onPhase: (p) => phases.push(p) })).seq, i);
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  assert.deepEqual(sums, expected);
  assert.equal(phases.filter((p) => p === 'dump').length, 3);
  // The ranks' connections to the coordinator were TCP ones (not kept across a dump).
  assert.match(job.address, /^tcp:127\.0\.0\.1:\d+$/);
});

test('criu: the coordinator SIGKILLed while every rank stands dumped (CKPT_FAULT=dumped:*:gate@2): no partial snapshot is listed, the ranks end, the previous one restarts', async (t) => {
  if (!(await needCriu(t))) return;
  const expected = await uninterrupted(t, criu);
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const hold = held(dir);
  const env = { ...criu.env, ...hold.env, ITERS: String(criu.iters), CKPT_STATE_DIR: join(dir, 'state') };
  const fault = faultEnv(t, 'dumped:*:gate@2');
  const name = `k${process.pid}`;
  const run = ckptProgram(['run', '-n', '4', '--crs', 'criu', '--name', name, '--dir', store, '--', process.execPath, program], { ...env, ...fault });
  t.after(() => run.kill());
  await waitForListedJob(name, env);
  await hold.reached(run);
  const first = await ckpt(['checkpoint', name, '--json'], env);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).seq, 1);
  const pids = (openSnapshot(join(store, '000001')).manifest as JobManifest).ranks.map((r) => r.pid);

  // The second checkpoint: every rank's images are written, none has rejoined.
  const second = ckpt(['checkpoint', name], env);
  const gates = pids.map((_, r) => gate(fault.CKPT_FAULT_DIR, 'dumped', r));
  for (const g of gates) await g.reached();
  const partial = readdirSync(store).filter((n) => n.startsWith('.partial-'));
  assert.equal(partial.length, 1, 'the second snapshot is being written');
  assert.ok(readdirSync(join(store, partial[0]!, 'rank-0', 'images')).length > 0, 'rank 0 was dumped');
  run.child.kill('SIGKILL');
  await run.exited;
  const failed = await second;
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /^ckpt: .*\[ECKPT_/);
  // Let the ranks go on: without their coordinator they end.
  for (const g of gates) g.open();
  assert.ok(await eventually(() => !pids.some(running), 30_000, 50), `ranks left: ${pids.filter(running).join(' ')}`);
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1], 'only the committed snapshot is listed');
  hold.release();
  assert.deepEqual(await restartToEnd(t, store), expected);
});
