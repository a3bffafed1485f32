// Idle strangers cannot starve a job (issue #10): every listener of a job — a
// rank's peer listener and the coordinator's — drops a connection that sends no
// valid hello within the hello timeout (CKPT_HELLO_TIMEOUT_MS, short here), and
// holds at most 64 such connections at once (more are closed at once).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ckpt, fixture, privateStateDir, tempDir } from '../helpers.js';
import { launchJob, parseAddress, type Job } from '../../dist/runtime/index.js';
import { controlRequest } from '../../dist/control/job-control.js';
import { decodeControl, FrameDecoder } from '../../dist/wire/frame.js';
import { listSnapshots, openSnapshot, verifySnapshot } from '../../dist/store/store.js';

before(() => privateStateDir());

const HELLO_MS = 1000;
const CONNECTIONS = 2000;

interface Idle {
  /** Connections the listener closed after its hello timeout, with an ECKPT_TIMEOUT error message. */
  timedOut: number;
  /** Connections it closed without a word (over the cap of unauthenticated connections). */
  droppedAtOnce: number;
  other: string[];
}

/**
 * Opens `count` connections to `address` that never send a byte, and resolves
 * once the listener has closed every one of them (we never close them ourselves).
 */
function idleConnections(address: string, count: number): Promise<Idle> {
  const a = parseAddress(address);
  if (a.transport !== 'tcp') throw new Error(`not a tcp address: ${address}`);
  return new Promise((resolve) => {
    const idle: Idle = { timedOut: 0, droppedAtOnce: 0, other: [] };
    let closed = 0;
    for (let i = 0; i < count; i++) {
      const socket: Socket = connect({ host: a.host, port: a.port });
      const messages: { code?: string; message?: string }[] = [];
      const decoder = new FrameDecoder((f) => messages.push(decodeControl(f.payload) as never), { control: 1 << 20, data: 0 });
      socket.on('data', (d: Buffer) => decoder.push(d));
      // A connection closed at once may be reset: that is a close too.
      socket.on('error', () => {});
      socket.on('close', () => {
        const m = messages[0];
        if (!m) idle.droppedAtOnce++;
        else if (m.code === 'ECKPT_TIMEOUT' && new RegExp(`no (peer-)?hello within ${HELLO_MS} ms`).test(m.message ?? '')) idle.timedOut++;
        else idle.other.push(JSON.stringify(m));
        if (++closed === count) resolve(idle);
      });
    }
  });
}

const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Lines of every rank; `until(re, n)` resolves once n lines (in all) have matched `re`. */
function watch(job: Job) {
  const lines: string[] = [];
  const waiters: { re: RegExp; count: number; resolve: () => void }[] = [];
  const seen = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  job.on('output', ({ line }) => {
    lines.push(line.toString().trim());
    for (const w of waiters.splice(0)) (seen(w.re) >= w.count ? w.resolve() : waiters.push(w));
  });
  const until = (re: RegExp, count = 1): Promise<void> =>
    seen(re) >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, count, resolve }));
  return { lines, until, seen };
}

/** The steady fixture as a tcp job of `size` self ranks, stopped by creating `stop`. */
const steadyJob = (name: string, size: number, store: string, stop: string, env: NodeJS.ProcessEnv = {}): Promise<Job> =>
  launchJob({ command: process.execPath, args: [fixture('jobs/steady.mjs')], size, name, oob: 'tcp', output: { mode: 'events' }, env: { STOP_FILE: stop, ...env }, store, crs: 'self' });

test(`${CONNECTIONS} idle connections to a rank and to the coordinator (tcp): dropped after the hello timeout, the job progresses, a checkpoint succeeds`, async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const stop = join(dir, 'stop');
  // The coordinator runs in this process and reads it at its start; the ranks inherit it.
  process.env.CKPT_HELLO_TIMEOUT_MS = String(HELLO_MS);
  let job: Job;
  try {
    job = await steadyJob(`idle${process.pid}`, 2, store, stop, { CKPT_HELLO_TIMEOUT_MS: String(HELLO_MS) });
  } finally {
    delete process.env.CKPT_HELLO_TIMEOUT_MS;
  }
  t.after(() => job.kill());
  const out = watch(job);
  await out.until(/^progress 0 /);

  // Where rank 0 listens for its peers: the coordinator tells its control clients.
  const status = (await controlRequest(job.record(), 'status')).status as { peers: string[] };
  assert.equal(status.peers.length, 2);
  assert.match(status.peers[0]!, /^tcp:127\.0\.0\.1:\d+$/);
  const rank0 = job.pids[0]!;
  const before = fds(rank0);

  const [toRank, toCoordinator] = await Promise.all([idleConnections(status.peers[0]!, CONNECTIONS), idleConnections(job.address, CONNECTIONS)]);
  for (const [who, idle] of [['rank 0', toRank], ['the coordinator', toCoordinator]] as const) {
    assert.deepEqual(idle.other, [], `${who}: unexpected answers`);
    assert.equal(idle.timedOut + idle.droppedAtOnce, CONNECTIONS);
    // Some were held until the hello timeout (and told why); those over the cap went at once.
    assert.ok(idle.timedOut >= 1, `${who}: none was held until the hello timeout`);
    assert.ok(idle.droppedAtOnce >= 1, `${who}: none was dropped at once (no cap?)`);
  }
  t.diagnostic(`rank 0: ${toRank.timedOut} timed out, ${toRank.droppedAtOnce} dropped at once; coordinator: ${toCoordinator.timedOut} / ${toCoordinator.droppedAtOnce}`);
  // Rank 0 lets go of their descriptors (a refused connection's is closed once our
  // end of it has closed too, a moment after we see it close: looked at until then).
  for (let i = 0; i < 100 && fds(rank0) > before; i++) await sleep(50);
  assert.ok(fds(rank0) <= before, `rank 0 has ${fds(rank0)} descriptors open, ${before} before`);

  // The job goes on, and a checkpoint through the CLI succeeds.
  await out.until(/^progress 0 /, out.seen(/^progress 0 /) + 1);
  const cp = await ckpt(['checkpoint', job.name, '--json']);
  assert.equal(cp.code, 0, cp.stderr);
  const seq = JSON.parse(cp.stdout).seq as number;
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [seq]);
  assert.ok((await verifySnapshot(openSnapshot(store))).ok);

  // … and runs to a correct end.
  writeFileSync(stop, '');
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
  const done = out.lines.flatMap((l) => {
    const m = /^done (\d+) (\d+) (\d+)$/.exec(l);
    return m ? [{ iter: Number(m[2]), sum: Number(m[3]) }] : [];
  });
  assert.equal(done.length, 2);
  for (const d of done) {
    assert.equal(d.iter, done[0]!.iter);
    assert.equal(d.sum, (d.iter * (d.iter - 1)) / 2);
  }
});

test('64 idle strangers holding the cap do not keep a member out: the one waiting longest is closed, a control client gets in', async (t) => {
  const dir = tempDir(t);
  const stop = join(dir, 'stop');
  const job = await steadyJob(`cap${process.pid}`, 1, join(dir, 'store'), stop);
  t.after(() => job.kill());
  await watch(job).until(/^progress 0 /);
  const a = parseAddress(job.address);
  if (a.transport !== 'tcp') throw new Error(`not a tcp address: ${job.address}`);
  // 64 connections that never say a word, all connected before the member comes.
  const strangers = await Promise.all(
    Array.from({ length: 64 }, () => new Promise<Socket>((resolve) => {
      const s = connect({ host: a.host, port: a.port }, () => resolve(s));
      s.on('error', () => {});
    })),
  );
  const firstClosed = new Promise<void>((resolve) => strangers[0]!.once('close', () => resolve()));
  t.after(() => strangers.forEach((s) => s.destroy()));
  const status = await controlRequest(job.record(), 'status');
  assert.equal((status.status as { size: number }).size, 1);
  await firstClosed;
  writeFileSync(stop, '');
  assert.equal((await job.wait()).status, 0);
});
