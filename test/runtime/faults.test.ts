// Bad input and faults: each ends with a clear error, nothing hangs, nothing is left.
import { before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fixture, privateStateDir, runJob, waitForJobLine, assertNoneLeft } from '../helpers.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Coordinator, launchJob, OOB_PROTOCOL_VERSION as V, parseAddress, type Job } from '../../dist/runtime/index.js';
import { answerProven, proveHello } from '../../dist/wire/hello-proof.js';
import { encodeControl, encodeFrame, encodeHeader, FrameDecoder, FrameKind, decodeControl } from '../../dist/wire/frame.js';

before(() => privateStateDir());

for (const [mode, how, status] of [
  ['exit', /rank 2 exited with status 3/, 3],
  ['kill', /rank 2 was killed by SIGKILL/, 137],
  ['abort', /rank 2 aborted the job: giving up/, 4],
] as const) {
  test(`a rank that fails (${mode}) mid-collective aborts the whole job`, async () => {
    const r = await runJob('fail.mjs', 4, { argv: [mode, '2'], killGraceMs: 1000 });
    assert.equal(r.result.status, status);
    assert.equal(r.result.error?.code, 'ECKPT_JOB_ABORTED');
    assert.match(r.result.error!.message, how);
    assert.equal(r.result.error!.details.rank, 2);
    // Nobody got past the collective the failing rank never joined.
    assert.equal(r.stdout.flat().filter((l) => l === 'finished').length, 0);
  });
}

test('a rank that never joins: the others are released by the join timeout', async () => {
  const r = await runJob('noinit.mjs', 3, { joinTimeoutMs: 1500, killGraceMs: 500 });
  assert.notEqual(r.result.status, 0);
  assert.match(r.result.error!.message, /timed out after 1500 ms waiting for rank 0 to join the job/);
});

test('a deadlock ends with a timeout that names what was waited for', async () => {
  const r = await runJob('deadlock.mjs', 2, { rankTimeoutMs: 500 });
  assert.equal(r.result.status, 9);
  const lines = r.stderr.flat().join('\n');
  assert.match(lines, /ECKPT_TIMEOUT: rank \d timed out after 500 ms in recv\(source=\d, tag=3\)/);
});

test('bad sizes and unknown commands fail before anything starts', async () => {
  await assert.rejects(launchJob({ command: 'true', size: 0 }), /1 to 256 ranks, not 0/);
  await assert.rejects(launchJob({ command: 'true', size: 257 }), /1 to 256 ranks, not 257/);
  await assert.rejects(launchJob({ command: 'no-such-command-xyz', size: 2 }), (e: any) => e.code === 'ECKPT_COMMAND_NOT_FOUND');
  await assert.rejects(launchJob({ command: 'true', size: 1, oob: 'udp' as never }), /unix or tcp/);
});

test('a rank whose coordinator is unreachable fails at init with OOB_UNREACHABLE', async () => {
  const env = { ...process.env, CKPT_JOB_ID: 'nojob', CKPT_RANK: '0', CKPT_SIZE: '2', CKPT_COORD: 'unix:/nonexistent/ckpt/coord.sock', CKPT_JOB_SECRET: 'x', CKPT_CONNECT_TIMEOUT_MS: '300' };
  const child = spawn(process.execPath, [fixture('runtime/ring.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise((r) => child.on('close', r));
  assert.notEqual(code, 0);
  assert.match(stderr, /cannot reach the coordinator at unix:\/nonexistent\/ckpt\/coord.sock: ENOENT/);
});

// ---- hostile connections to a running job ------------------------------------

/** Connects raw to an address and collects the control messages sent back until close. */
async function rawExchange(address: string, frames: Buffer[]): Promise<{ messages: any[]; socket: Socket }> {
  const a = parseAddress(address);
  const socket = a.transport === 'unix' ? connect(a.path) : connect(a.port, a.host);
  const messages: any[] = [];
  const decoder = new FrameDecoder((f) => messages.push(decodeControl(f.payload)), { control: 1 << 20, data: 0 });
  socket.on('data', (d: Buffer) => decoder.push(d));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  for (const f of frames) socket.write(f);
  await new Promise<void>((resolve) => {
    socket.on('error', () => {});
    socket.once('close', () => resolve());
    setTimeout(() => {
      socket.destroy();
      resolve();
    }, 10_000).unref();
  });
  return { messages, socket };
}

/** Connects raw to an address, sends `frame`, and resolves with the first control message back (then closes). */
async function firstAnswer(address: string, frame: Buffer): Promise<any> {
  const a = parseAddress(address);
  const socket = a.transport === 'unix' ? connect(a.path) : connect(a.port, a.host);
  try {
    return await new Promise((resolve, reject) => {
      const decoder = new FrameDecoder((f) => resolve(decodeControl(f.payload)), { control: 1 << 20, data: 0 });
      socket.on('data', (d: Buffer) => decoder.push(d));
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`${address} closed without an answer`)));
      socket.write(frame);
    });
  } finally {
    socket.destroy();
  }
}

async function withRunningJob(oob: 'unix' | 'tcp', body: (job: Job) => Promise<void>): Promise<void> {
  const r = await runJob('wait.mjs', 2, {
    oob,
    killGraceMs: 500,
    whileRunning: async (job) => {
      await waitForJobLine(job, /^ready/, 2);
      try {
        await body(job);
      } finally {
        job.kill('ended by the test');
      }
    },
  });
  // The hostile connections were refused without disturbing the job.
  assert.match(r.result.error!.message, /ended by the test/);
}

for (const oob of ['unix', 'tcp'] as const) {
  test(`the coordinator refuses a wrong secret, a duplicate rank and bad frames (${oob})`, async () => {
    await withRunningJob(oob, async (job) => {
      const rejected: string[] = [];
      job.on('rejected', (e) => rejected.push(e.message));
      const hello = (o: object) => encodeControl({ type: 'hello', v: V, role: 'rank', job: job.id, pid: 1, peer: 'unix:/x', ...o });
      const proof = (secret: string, to = job.address) => proveHello(secret, { role: 'rank', job: job.id, rank: 1, to });

      const wrong = await rawExchange(job.address, [hello({ rank: 1, ...proof('not-the-secret') })]);
      assert.equal(wrong.messages[0]?.code, 'ECKPT_OOB_AUTH');
      assert.match(wrong.messages[0]?.message, /wrong job secret/);
      // A hello that proved nothing gets a refusal that proves nothing (no proof made to order).
      assert.equal(wrong.messages[0]?.proof, undefined);
      // The secret itself (protocol 1 sent it): no proof, refused.
      const plain = await rawExchange(job.address, [hello({ rank: 1, secret: job.secret })]);
      assert.equal(plain.messages[0]?.code, 'ECKPT_OOB_AUTH');
      // A proof made for another address (what a stranger there heard): refused here.
      const elsewhere = await rawExchange(job.address, [hello({ rank: 1, ...proof(job.secret, 'tcp:127.0.0.1:9') })]);
      assert.equal(elsewhere.messages[0]?.code, 'ECKPT_OOB_AUTH');

      const dupHello = proof(job.secret);
      const dup = await rawExchange(job.address, [hello({ rank: 1, ...dupHello })]);
      assert.equal(dup.messages[0]?.code, 'ECKPT_OOB_AUTH');
      assert.match(dup.messages[0]?.message, /duplicate rank 1/);
      // A member's hello refused: the refusal proves the secret, so the member takes its word.
      assert.ok(answerProven(job.secret, 'error', dupHello.nonce, dup.messages[0]?.proof));

      const big = await rawExchange(job.address, [encodeHeader(FrameKind.CONTROL, 0, 5 << 20)]);
      assert.equal(big.messages[0]?.code, 'ECKPT_OOB_PROTOCOL');
      assert.match(big.messages[0]?.message, /exceeds the limit of 1048576 bytes/);

      const garbage = await rawExchange(job.address, [Buffer.from('GET / HTTP/1.0\r\n\r\n')]);
      assert.match(garbage.messages[0]?.message, /bad magic/);

      const notJson = await rawExchange(job.address, [encodeFrame(FrameKind.CONTROL, 0, Buffer.from('{"type":'))]);
      assert.match(notJson.messages[0]?.message, /not valid JSON/);

      const oldVersion = await rawExchange(job.address, [hello({ rank: 1, ...proof(job.secret), v: 99 })]);
      assert.match(oldVersion.messages[0]?.message, /version 99 not supported/);

      const control = await rawExchange(job.address, [encodeControl({ type: 'hello', v: V, role: 'control', job: job.id, ...proveHello('nope', { role: 'control', job: job.id, to: job.address }) })]);
      assert.equal(control.messages[0]?.code, 'ECKPT_OOB_AUTH');
      // A member's hello seen on the wire and sent again: taken once, refused after.
      const seen = encodeControl({ type: 'hello', v: V, role: 'control', job: job.id, ...proveHello(job.secret, { role: 'control', job: job.id, to: job.address }) });
      assert.equal((await firstAnswer(job.address, seen)).type, 'welcome');
      const replayed = await firstAnswer(job.address, seen);
      assert.equal(replayed.code, 'ECKPT_OOB_AUTH');
      assert.match(replayed.message, /a hello this coordinator took before: replayed/);
      assert.ok(rejected.length >= 9, `rejections seen: ${rejected.join('; ')}`);
    });
  });
}

test('a rank refuses peer connections with a wrong secret, a duplicate rank or an oversized message', async () => {
  await withRunningJob('unix', async (job) => {
    const peer0 = `unix:${join(job.dir, 'r0.sock')}`;
    const hello = (o: object) => encodeControl({ type: 'peer-hello', v: V, role: 'peer', job: job.id, ...o });
    const proof = (secret: string) => proveHello(secret, { role: 'peer', job: job.id, rank: 1, to: peer0 });
    const wrong = await rawExchange(peer0, [hello({ rank: 1, ...proof('bad') })]);
    assert.equal(wrong.messages[0]?.code, 'ECKPT_OOB_AUTH');
    // Ranks 0 and 1 are linked since their barrier: a second "rank 1" is refused.
    const dupHello = proof(job.secret);
    const dup = await rawExchange(peer0, [hello({ rank: 1, ...dupHello })]);
    assert.match(dup.messages[0]?.message ?? '', /duplicate rank 1/);
    // The same peer-hello again (seen on the wire): refused as a replay.
    const replayed = await rawExchange(peer0, [hello({ rank: 1, ...dupHello })]);
    assert.match(replayed.messages[0]?.message ?? '', /a peer-hello this rank took before: replayed/);
    assert.ok(answerProven(job.secret, 'error', dupHello.nonce, dup.messages[0]?.proof));
    assert.equal(wrong.messages[0]?.proof, undefined);
    // The size limit is checked from the header, before any payload is buffered.
    const big = await rawExchange(peer0, [encodeHeader(FrameKind.CONTROL, 0, 2 << 20)]);
    assert.match(big.messages[0]?.message ?? '', /exceeds the limit of 1048576 bytes/);
    // No data before the hello: it is refused from its header, before it is read.
    const data = await rawExchange(peer0, [encodeHeader(FrameKind.BYTES, 5, 1 << 30)]);
    assert.match(data.messages[0]?.message ?? '', /exceeds the limit of 0 bytes/);
  });
});

test('killing the job ends every rank, with SIGKILL for those ignoring SIGTERM', async () => {
  const job = await launchJob({
    command: 'sh',
    args: ['-c', 'trap "" TERM; echo up; sleep 30 & wait; sleep 30'],
    size: 3,
    output: { mode: 'events' },
    killGraceMs: 300,
  });
  await waitForJobLine(job, /^up$/, 3);
  job.kill('ended by the test');
  const result = await job.wait();
  assert.equal(result.status, 143);
  assert.ok(result.ranks.every((r) => r.signal === 'SIGKILL'), JSON.stringify(result.ranks));
  await assertNoneLeft('CKPT_JOB_ID', job.id);
});


/** A coordinator of its own for one test (unix, in a private directory). */
async function testCoordinator(t: TestContext, jobId: string, size: number): Promise<{ c: Coordinator; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-coord-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'coord.sock');
  const c = new Coordinator({ jobId, size, secret: 's3cret', address: { transport: 'unix', path } });
  await c.listen();
  t.after(() => c.close());
  return { c, path };
}

/** A connection to `path` whose control messages are read one at a time (next()), and its close. */
function messagesFrom(t: TestContext, path: string): { socket: Socket; next: () => Promise<any>; closed: Promise<void> } {
  const socket = connect(path);
  t.after(() => socket.destroy());
  const messages: any[] = [];
  let wake: (() => void) | undefined;
  const decoder = new FrameDecoder((f) => (messages.push(decodeControl(f.payload)), wake?.()), { control: 1 << 20, data: 0 });
  socket.on('data', (d: Buffer) => decoder.push(d));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  const next = async () => {
    while (!messages.length) await new Promise<void>((r) => (wake = r));
    return messages.shift();
  };
  return { socket, next, closed };
}

test("the coordinator takes a rank's unasked 'arrived' report (self checkpoints) and refuses a malformed one", async (t) => {
  const { c, path } = await testCoordinator(t, 'j-arrived', 1);
  const rejected: string[] = [];
  c.on('rejected', (e) => rejected.push(`${e.code}: ${e.message}`));
  const { socket, next, closed } = messagesFrom(t, path);
  const proven = proveHello('s3cret', { role: 'rank', job: 'j-arrived', rank: 0, to: c.address });
  socket.write(encodeControl({ type: 'hello', v: V, role: 'rank', job: 'j-arrived', rank: 0, pid: process.pid, ...proven, peer: 'unix:/x' }));
  assert.equal((await next()).type, 'welcome');

  // Reported before anyone waits for it, then waited for: resolves at once with `written`.
  // A request after it, on the same connection, is answered once the report has been
  // taken (the coordinator reads a connection's messages in order): then wait for it.
  socket.write(encodeControl({ type: 'arrived', seq: 3, safePoint: 7, written: [0] }));
  socket.write(encodeControl({ type: 'request', id: 1, op: 'no-such-op' }));
  const answer = await next();
  assert.equal(answer.type, 'reply');
  assert.match(answer.message, /unknown operation 'no-such-op'/);
  assert.deepEqual(await c.awaitArrival(0, 3, 7, 2000), [0]);
  // Another checkpoint's or another safe point's report does not count: the wait times out, naming both.
  await assert.rejects(c.awaitArrival(0, 4, 8, 300), /timed out after 300 ms waiting for rank 0 to reach safe point 8/);
  // Waited for first, reported later.
  const waiting = c.awaitArrival(0, 5, 9, 2000);
  socket.write(encodeControl({ type: 'arrived', seq: 5, safePoint: 9, written: [2] }));
  assert.deepEqual(await waiting, [2]);

  // Malformed (a count per rank missing): the connection is refused with a protocol error.
  // Whoever waits for that rank learns at once that it is gone.
  const lost = assert.rejects(c.awaitArrival(0, 6, 10, 5000), /rank 0 lost its connection to the coordinator/);
  socket.write(encodeControl({ type: 'arrived', seq: 6, safePoint: 10, written: [] }));
  const err = await next();
  assert.equal(err.code, 'ECKPT_OOB_PROTOCOL');
  assert.match(err.message, /rank 0 sent a malformed 'arrived'/);
  await closed;
  await lost;
  assert.ok(rejected.some((r) => /malformed 'arrived'/.test(r)), rejected.join('; '));
});

test('a rank CRIU restored from an older ckpt\'s snapshot (protocol 1: the secret in its hello) is still admitted; no other protocol-1 hello is', async (t) => {
  const { c, path } = await testCoordinator(t, 'j-v1', 2);
  const v1 = { type: 'hello', v: 1, role: 'rank', job: 'j-v1', pid: process.pid, peer: 'unix:/x', markers: true };
  // Not restored (a rank of a running job speaks this ckpt's protocol): refused.
  const fresh = await rawExchange(c.address, [encodeControl({ ...v1, rank: 0, secret: 's3cret' })]);
  assert.match(fresh.messages[0]?.message ?? '', /version 1 not supported/);
  const wrong = await rawExchange(c.address, [encodeControl({ ...v1, rank: 0, secret: 'nope', restored: true })]);
  assert.equal(wrong.messages[0]?.code, 'ECKPT_OOB_AUTH');
  // Restored, with the right secret: it joins (the welcome comes once both ranks have).
  const first = messagesFrom(t, path);
  first.socket.write(encodeControl({ ...v1, rank: 0, secret: 's3cret', restored: true }));
  const other = messagesFrom(t, path).socket;
  other.write(encodeControl({ type: 'hello', v: V, role: 'rank', job: 'j-v1', rank: 1, pid: process.pid, peer: 'unix:/y', markers: true, ...proveHello('s3cret', { role: 'rank', job: 'j-v1', rank: 1, to: c.address }) }));
  const welcome = await first.next();
  assert.equal(welcome.type, 'welcome');
  assert.deepEqual(welcome.peers, ['unix:/x', 'unix:/y']);
});
