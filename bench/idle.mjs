#!/usr/bin/env node
// The cost of one small operation after an idle gap, beside the same operation run
// back to back: on the project's VM a system call path not taken for a while costs
// far more (the hypervisor, not the guest: no page fault is counted), which is what a
// checkpoint's steps pay after the coordinator and its agents waited for the dumps.
// Not a test; no root, no cluster.
//   node bench/idle.mjs [--reps N] [--gaps 0,5,30,100,300] [--json]
// Per gap: median µs of one fstat of a directory, and of a loopback unix round trip
// (one process writes, its child echoes), each after sleeping that long.
import { fork } from 'node:child_process';
import { fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const REPS = Number(arg('--reps', '9'));
const GAPS = String(arg('--gaps', '0,5,30,100,300')).split(',').map(Number);
if (!Number.isInteger(REPS) || REPS < 1 || GAPS.some((g) => !Number.isFinite(g) || g < 0)) {
  console.error('bench/idle.mjs: --reps N (≥ 1) and --gaps MS,MS,… (≥ 0)');
  process.exit(2);
}

if (process.argv[2] === 'echo') {
  // The child: echoes every byte on the socket it is given.
  const s = createConnection(process.argv[3]);
  s.on('data', (d) => s.write(d));
} else {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-idle-'));
  const fd = openSync(dir, 'r');
  const path = join(dir, 'echo.sock');
  const server = createServer();
  await new Promise((resolve) => server.listen(path, resolve));
  const child = fork(new URL(import.meta.url).pathname, ['echo', path], { stdio: 'inherit' });
  const [peer] = await Promise.all([new Promise((resolve) => server.once('connection', resolve))]);
  const roundTrip = () => new Promise((resolve) => {
    const t0 = performance.now();
    peer.once('data', () => resolve(performance.now() - t0));
    peer.write('x');
  });
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const rows = [];
  for (const gap of GAPS) {
    const stat = [], trip = [];
    for (let i = 0; i < REPS; i++) {
      if (gap > 0) await sleep(gap); else await roundTrip();
      const t0 = performance.now();
      fstatSync(fd);
      stat.push(performance.now() - t0);
      if (gap > 0) await sleep(gap);
      trip.push(await roundTrip());
    }
    rows.push({ gapMs: gap, fstatUs: median(stat) * 1000, roundTripUs: median(trip) * 1000 });
  }
  peer.destroy();
  child.kill();
  server.close();
  rmSync(dir, { recursive: true, force: true });
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
  else {
    console.log('idle gap (ms) | fstat (µs, median) | unix round trip to another process (µs, median)');
    for (const r of rows) console.log(`${String(r.gapMs).padStart(13)} | ${r.fstatUs.toFixed(1).padStart(18)} | ${r.roundTripUs.toFixed(1).padStart(10)}`);
    const hot = rows.find((r) => r.gapMs === 0);
    if (hot) for (const r of rows.filter((x) => x.gapMs > 0)) console.log(`after ${r.gapMs} ms idle: fstat ×${(r.fstatUs / hot.fstatUs).toFixed(1)}, round trip ×${(r.roundTripUs / hot.roundTripUs).toFixed(1)} the back-to-back cost`);
  }
}
