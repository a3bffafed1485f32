// The hello's proof of the job secret (src/wire/hello-proof.ts): what it binds, and
// that no dialer hands the secret, or anything else, to a stranger that answers at the
// coordinator's address. Real unix sockets; every step waits for what it causes.
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { answerProven, helloProven, proveAnswer, proveHello } from '../../dist/wire/hello-proof.js';
import { decodeControl, encodeControl, FrameDecoder } from '../../dist/wire/frame.js';
import { init } from '../../dist/rank/init.js';
import { connectControl } from '../../dist/control/job-control.js';
import { tempDir } from '../helpers.js';

const SECRET = 'the-secret-of-this-test';

test('a hello proves the secret for what it claims and the address it dialed, and for nothing else', () => {
  const claim = { role: 'rank', job: 'j1', rank: 3, to: 'tcp:10.0.0.1:4000' };
  const p = proveHello(SECRET, claim);
  const hello = { type: 'hello', ...claim, ...p };
  assert.ok(!JSON.stringify(hello).includes(SECRET));
  assert.ok(helloProven(SECRET, hello, ['unix:/x', 'tcp:10.0.0.1:4000']));
  assert.ok(!helloProven('another secret', hello, ['tcp:10.0.0.1:4000']));
  assert.ok(!helloProven(SECRET, hello, ['tcp:10.0.0.2:4000']), 'dialed elsewhere');
  for (const [k, v] of [['rank', 4], ['role', 'control'], ['job', 'j2'], ['to', 'tcp:10.0.0.1:4001'], ['nonce', '00'.repeat(16)], ['proof', 'zz']] as const) {
    assert.ok(!helloProven(SECRET, { ...hello, [k]: v }, ['tcp:10.0.0.1:4000', 'tcp:10.0.0.1:4001']), `${k} changed`);
  }
  const { proof: _, ...noProof } = hello;
  assert.ok(!helloProven(SECRET, { ...noProof, secret: SECRET }, ['tcp:10.0.0.1:4000']), 'the secret itself is no proof');
  // Two hellos of the same claim differ (a fresh nonce each).
  assert.notEqual(proveHello(SECRET, claim).nonce, p.nonce);
  // The answer proves the secret over that nonce, and for that answer only.
  const ack = proveAnswer(SECRET, 'welcome', p.nonce);
  assert.ok(answerProven(SECRET, 'welcome', p.nonce, ack));
  assert.ok(!answerProven(SECRET, 'peer-ack', p.nonce, ack));
  assert.ok(!answerProven(SECRET, 'welcome', proveHello(SECRET, claim).nonce, ack));
  assert.ok(!answerProven('another secret', 'welcome', p.nonce, ack));
  assert.ok(!answerProven(SECRET, 'welcome', p.nonce, undefined));
});

/**
 * A stranger listening where the coordinator should be: it records what it hears and
 * answers every hello with `answer` (a welcome, or a refusal or an abort that would end
 * the dialer); with `secret`, the answer proves it (the job's coordinator's would).
 */
async function stranger(t: TestContext, answer: 'welcome' | 'error' | 'abort' = 'welcome', secret?: string): Promise<{ address: string; heard: () => Buffer; hellos: Record<string, unknown>[] }> {
  const path = join(tempDir(t), 'coord.sock');
  const chunks: Buffer[] = [];
  const hellos: Record<string, unknown>[] = [];
  const server = createServer((s) => {
    const d = new FrameDecoder((f) => {
      const m = decodeControl(f.payload);
      hellos.push(m);
      const proof = secret === undefined ? {} : { proof: proveAnswer(secret, answer, m.nonce as string) };
      const body = answer === 'welcome' ? { v: m.v, job: m.job, size: 2, peers: ['unix:/a', 'unix:/b'] } : { code: 'ECKPT_JOB_ABORTED', message: 'told by whoever answers' };
      if (m.type === 'hello') s.write(encodeControl({ type: answer, ...body, ...proof }));
    }, { control: 1 << 20, data: 0 });
    s.on('data', (x: Buffer) => {
      chunks.push(x);
      d.push(x);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  t.after(() => server.close());
  return { address: `unix:${path}`, heard: () => Buffer.concat(chunks), hellos };
}

test('a rank whose coordinator address answers without proving the secret: init() fails, and the stranger got no secret', async (t) => {
  const s = await stranger(t);
  const env = { CKPT_JOB_ID: 'j-stranger', CKPT_RANK: '0', CKPT_SIZE: '2', CKPT_COORD: s.address, CKPT_JOB_SECRET: SECRET, CKPT_PEER_HOST: '127.0.0.1' };
  await assert.rejects(init({ env, onAbort: 'error', onCoordinatorLost: 'error' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ECKPT_OOB_AUTH');
    assert.equal(e.message, `what answers at ${s.address} is not this job's coordinator (its welcome does not prove the job secret)`);
    return true;
  });
  assert.equal(s.hellos[0]?.role, 'rank');
  assert.equal(s.hellos[0]?.to, s.address);
  assert.ok(!s.heard().includes(SECRET));
});

test('a control client (ckpt kill, ckpt checkpoint) that finds a stranger at the job\'s address: refused, and the stranger got no secret', async (t) => {
  const s = await stranger(t);
  const record = { id: 'j-stranger', address: s.address, secret: SECRET } as Parameters<typeof connectControl>[0];
  await assert.rejects(connectControl(record), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ECKPT_OOB_AUTH');
    assert.match(e.message, /is not the coordinator of job j-stranger \(its welcome does not prove the job secret\)$/);
    return true;
  });
  assert.equal(s.hellos[0]?.role, 'control');
  assert.ok(!s.heard().includes(SECRET));
});

test('a refusal or an abort before the welcome ends a rank, an agent or a control client only with its proof of the secret', async (t) => {
  const env = (address: string) => ({ CKPT_JOB_ID: 'j-stranger', CKPT_RANK: '0', CKPT_SIZE: '2', CKPT_COORD: address, CKPT_JOB_SECRET: SECRET, CKPT_PEER_HOST: '127.0.0.1' });
  for (const answer of ['error', 'abort'] as const) {
    // A stranger's: the rank says what answers there, not the stranger's story.
    const s = await stranger(t, answer);
    await assert.rejects(init({ env: env(s.address), onAbort: 'error', onCoordinatorLost: 'error' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ECKPT_OOB_AUTH');
      assert.equal(e.message, `what answers at ${s.address} is not this job's coordinator (its ${answer} does not prove the job secret)`);
      return true;
    });
    // The coordinator's own (it holds the secret): taken, with what it says.
    const c = await stranger(t, answer, SECRET);
    await assert.rejects(init({ env: env(c.address), onAbort: 'error', onCoordinatorLost: 'error' }), (e: Error & { code?: string }) => {
      assert.notEqual(e.code, 'ECKPT_OOB_AUTH');
      assert.match(e.message, /told by whoever answers/);
      return true;
    });
  }
  const s = await stranger(t, 'error');
  await assert.rejects(connectControl({ id: 'j-stranger', address: s.address, secret: SECRET } as Parameters<typeof connectControl>[0]), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ECKPT_OOB_AUTH');
    assert.match(e.message, /is not the coordinator of job j-stranger \(its error does not prove the job secret\)$/);
    return true;
  });
});
