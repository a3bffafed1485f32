// The peer network's links, made when first used: real unix sockets between
// PeerNetworks in this process. Each step waits for what it causes (a frame read, a
// connection answered), never for time.
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PeerNetwork } from '../../dist/rank/peers.js';
import { parseAddress } from '../../dist/wire/channel.js';
import { FrameKind } from '../../dist/wire/frame.js';
import { tempDir } from '../helpers.js';

interface Net {
  net: PeerNetwork;
  /** Payloads read, per source, in order. */
  got: string[][];
  /** Resolves once `n` frames from `source` are in. */
  frames(source: number, n: number): Promise<string[]>;
}

async function network(t: TestContext, size: number, transport: 'unix' | 'tcp' = 'unix'): Promise<Net[]> {
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
      secret: 'a-secret-of-this-test',
      maxMessageBytes: 1 << 20,
      linkTimeoutMs: 60_000,
      onFrame: (source, frame) => {
        got[source]!.push(Buffer.from(frame.payload).toString());
        for (const w of waiting.splice(0)) w();
      },
      onPeerEnd: () => {},
      onFatal: (err) => assert.fail(`rank ${rank}: ${err.message}`),
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
  return nets;
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
