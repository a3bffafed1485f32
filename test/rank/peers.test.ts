// The peer network's links, made when first used: real unix sockets between
// PeerNetworks in this process. Each step waits for what it causes (a frame read, a
// connection answered), never for time.
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PeerNetwork } from '../../dist/rank/peers.js';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { parseAddress } from '../../dist/wire/channel.js';
import { decodeControl, FrameDecoder, FrameKind, encodeControl } from '../../dist/wire/frame.js';
import { tempDir } from '../helpers.js';

interface Net {
  net: PeerNetwork;
  /** Payloads read, per source, in order. */
  got: string[][];
  /** Resolves once `n` frames from `source` are in. */
  frames(source: number, n: number): Promise<string[]>;
}

const SECRET = 'a-secret-of-this-test';

async function network(t: TestContext, size: number, transport: 'unix' | 'tcp' = 'unix', onFatal?: (rank: number, err: Error) => void): Promise<Net[] & { addresses: string[] }> {
  const dir = tempDir(t);
  // The sockets are unref'd (a rank must not be held alive by them): this keeps the test's loop alive.
  const alive = setInterval(() => {}, 1 << 30);
  t.after(() => clearInterval(alive));
  const nets: Net[] = [];
  for (let rank = 0; rank < size; rank++) {
    const got: string[][] = Array.from({ length: size }, () => []);
    const waiting: (() => void)[] = [];
    const net = new PeerNetwork({
      rank,
      size,
      jobId: 'job-peers-test',
      secret: SECRET,
      maxMessageBytes: 1 << 20,
      linkTimeoutMs: 60_000,
      onFrame: (source, frame) => {
        got[source]!.push(Buffer.from(frame.payload).toString());
        for (const w of waiting.splice(0)) w();
      },
      onPeerEnd: () => {},
      onFatal: (err) => (onFatal ? onFatal(rank, err) : assert.fail(`rank ${rank}: ${err.message}`)),
    });
    const frames = async (source: number, n: number) => {
      while (got[source]!.length < n) await new Promise<void>((r) => waiting.push(r));
      return got[source]!;
    };
    nets.push({ net, got, frames });
    t.after(() => net.close());
  }
  const at = (r: number) => parseAddress(transport === 'unix' ? `unix:${join(dir, `r${r}.sock`)}` : 'tcp:127.0.0.1:0');
  const addresses = await Promise.all(nets.map(({ net }, r) => net.listen(at(r))));
  for (const { net } of nets) net.knowPeers(addresses);
  return Object.assign(nets, { addresses });
}

const send = (from: Net, dest: number, text: string) => from.net.send(dest, FrameKind.BYTES, 1, Buffer.from(text));

for (const transport of ['unix', 'tcp'] as const) {
  test(`a link is made when first used, one per pair even when both ranks connect at once; frames keep their order (${transport})`, async (t) => {
    const [a, b, c] = await network(t, 3, transport);
    assert.deepEqual([a!.net.linkState(1), a!.net.linkState(2), b!.net.linkState(2)], ['none', 'none', 'none']);
    // Both ends connect in the same turn: the higher rank's connection is kept.
    for (const x of ['a1', 'a2', 'a3']) void send(a!, 1, x);
    for (const x of ['b1', 'b2']) void send(b!, 0, x);
    assert.deepEqual(await b!.frames(0, 3), ['a1', 'a2', 'a3']);
    assert.deepEqual(await a!.frames(1, 2), ['b1', 'b2']);
    assert.deepEqual([a!.net.linkState(1), b!.net.linkState(0)], ['up', 'up']);
    // Ranks that sent each other nothing have no link.
    assert.deepEqual([a!.net.linkState(2), b!.net.linkState(2), c!.net.linkState(0), c!.net.linkState(1)], ['none', 'none', 'none', 'none']);
    assert.ok(a!.net.linked && b!.net.linked);
    // The kept link carries both ways, and nothing was counted twice.
    void send(b!, 0, 'b3');
    assert.deepEqual(await a!.frames(1, 3), ['b1', 'b2', 'b3']);
    assert.deepEqual([a!.net.written[1], b!.net.read[0], b!.net.written[0], a!.net.read[1]], [3, 3, 3, 3]);
  });
}

test('a rank past its drain turns a new link away; the frames wait in the sender and go once it resumes', async (t) => {
  const [a, b] = await network(t, 2);
  b!.net.seal();
  void send(a!, 1, 'held');
  await a!.net.whenLinked(60_000);
  assert.equal(a!.net.linkState(1), 'none');
  assert.equal(a!.net.unsent().length, 1, 'the frame is still with its sender');
  assert.equal(b!.got[0]!.length, 0);
  b!.net.resume();
  a!.net.resume();
  assert.deepEqual(await b!.frames(0, 1), ['held']);
  assert.equal(a!.net.unsent().length, 0);
});

test('a link made during a drain gets the drain marker behind what was queued for it', async (t) => {
  const [a, b] = await network(t, 2);
  b!.net.sendMarkers(7);
  void send(a!, 1, 'before');
  assert.deepEqual(await b!.frames(0, 1), ['before']);
  await new Promise<void>((resolve) => {
    const check = () => (a!.net.markers[1]?.id === 7 ? resolve() : undefined);
    a!.net.onRead = check;
    check();
  });
  assert.equal(a!.net.markers[1]?.abort, false);
  assert.equal(b!.net.linkState(0), 'up');
});

test('a peer the coordinator reports exited, with no link up: what waits for a link fails, and later sends fail at once', async (t) => {
  const [a] = await network(t, 3);
  // Addresses that lead nowhere: rank 0's connection to rank 2 is on its way when the coordinator's word comes.
  a!.net.knowPeers(['unix:/nonexistent/r0.sock', 'unix:/nonexistent/r1.sock', 'unix:/nonexistent/r2.sock']);
  const waiting = send(a!, 2, 'lost');
  assert.ok(waiting instanceof Promise);
  a!.net.exited(2);
  await assert.rejects(waiting, /rank 2 has exited/);
  assert.throws(() => send(a!, 2, 'later'), /rank 2 has closed its connection/);
  assert.equal(a!.net.unsent().length, 0);
});

/**
 * Three ranks over TCP; rank 1's address taken by a stranger's listener (`onConnection`),
 * and rank 0 sending rank 1 a frame. The ranks' fatal errors (one line each) and the first one.
 */
async function strangerAtRank1(t: TestContext, onConnection: (s: Socket) => void) {
  const fatal: string[] = [];
  let failed: () => void = () => {};
  const failure = new Promise<void>((r) => (failed = r));
  const nets = await network(t, 3, 'tcp', (rank, err) => {
    fatal.push(`rank ${rank}: ${(err as { code?: string }).code} ${err.message}`);
    failed();
  });
  const stranger = createServer((s) => {
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => stranger.listen(0, '127.0.0.1', () => r()));
  t.after(() => stranger.close());
  const strangerAddress = `tcp:127.0.0.1:${(stranger.address() as AddressInfo).port}`;
  const [a] = nets;
  a!.net.knowPeers([nets.addresses[0]!, strangerAddress, nets.addresses[2]!]);
  void send(a!, 1, 'private payload')?.catch(() => {});
  return { fatal, failure, nets, strangerAddress };
}

test('a rank that finds a stranger at a peer\'s address gives it neither the job secret nor its frames, and what the stranger heard opens no other link', async (t) => {
  // Another user's listener on the port rank 1 was at: it answers peer-ack, as rank 1 would.
  const heard: Buffer[] = [];
  let gotPayload: () => void = () => {};
  const payloadHeard = new Promise<void>((r) => (gotPayload = r));
  const { fatal, failure, nets, strangerAddress } = await strangerAtRank1(t, (s) => {
    s.on('data', (d: Buffer) => {
      heard.push(d);
      if (Buffer.concat(heard).includes('private payload')) gotPayload();
      s.write(encodeControl({ type: 'peer-ack' }));
    });
  });
  // Either it refuses the stranger, or (what must not happen) its frame reaches it.
  await Promise.race([failure, payloadHeard]);
  assert.match(fatal[0]!, /^rank 0: ECKPT_OOB_AUTH rank 1 at tcp:127\.0\.0\.1:\d+ did not prove the job secret \(its peer-ack\): a stranger answers there$/);
  const bytes = Buffer.concat(heard);
  assert.ok(!bytes.includes(SECRET), 'the secret went to the stranger');
  assert.ok(!bytes.includes('private payload'), 'a frame went to the stranger');
  const hellos: Record<string, unknown>[] = [];
  const decoder = new FrameDecoder((f) => hellos.push(decodeControl(f.payload)), { control: 1 << 20, data: 0 });
  decoder.push(bytes);
  assert.deepEqual(Object.keys(hellos[0]!).sort(), ['job', 'nonce', 'proof', 'rank', 'role', 'to', 'type', 'v']);
  assert.equal(hellos[0]!.to, strangerAddress);
  // Replayed to the real ranks, the hello it heard names the stranger's address: refused.
  for (const r of [1, 2]) {
    const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const port = Number(nets.addresses[r]!.split(':').at(-1));
      const s = connect(port, '127.0.0.1', () => s.write(bytes));
      const d = new FrameDecoder((f) => resolve(decodeControl(f.payload)), { control: 1 << 20, data: 0 });
      s.on('data', (x: Buffer) => d.push(x));
      s.on('error', reject);
      t.after(() => s.destroy());
    });
    assert.equal(answer.type, 'error');
    assert.equal(answer.code, 'ECKPT_OOB_AUTH');
    assert.match(String(answer.message), /wrong job secret/);
  }
});

test('a refusal from a peer\'s address that does not prove the job secret is a stranger\'s, not the peer\'s', async (t) => {
  const { fatal, failure } = await strangerAtRank1(t, (s) => {
    s.once('data', () => s.end(encodeControl({ type: 'error', code: 'ECKPT_OOB_AUTH', message: 'duplicate rank 0: it is already connected' })));
  });
  await failure;
  assert.match(fatal[0]!, /^rank 0: ECKPT_OOB_AUTH rank 1 at tcp:127\.0\.0\.1:\d+ did not prove the job secret \(its error\): a stranger answers there$/);
});
