// A framed connection's limits (src/wire/channel.ts): a control frame over 1 MiB ends
// a connection, unless it proved itself one that needs more (a node agent's combined
// replies: allowControl); the gate of connections without a hello closes the one
// waiting longest. Real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { Channel, HelloGate, MAX_AGENT_CONTROL_BYTES } from '../../dist/wire/channel.js';

async function pair(): Promise<{ a: Channel; b: Channel; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  await new Promise<void>((r) => client.once('connect', r));
  const a = new Channel(client);
  const b = new Channel(await accepted);
  return { a, b, close: () => (a.destroy(), b.destroy(), server.close()) };
}

const big = { type: 'note', replies: 'x'.repeat(2 << 20) };

test('a 2 MiB control frame ends a connection by default, and passes once allowed', async (t) => {
  const first = await pair();
  t.after(first.close);
  const closed = new Promise<Error | undefined>((r) => first.b.once('close', (err) => r(err)));
  first.a.send(big);
  assert.match(String((await closed)?.message), /exceeds the limit of 1048576 bytes/);

  const second = await pair();
  t.after(second.close);
  second.b.allowControl(MAX_AGENT_CONTROL_BYTES);
  second.a.send(big);
  const m = await second.b.next(10_000, 'the big frame');
  assert.equal(String(m.replies).length, 2 << 20);
});

test('the hello gate closes the connection waiting longest when a new one comes over the cap', () => {
  const gate = new HelloGate(2);
  const closed: string[] = [];
  const release = gate.admit(() => closed.push('a'));
  gate.admit(() => closed.push('b'));
  gate.admit(() => closed.push('c'));
  assert.deepEqual(closed, ['a']);
  release(); // a's own close, later: nothing more
  gate.admit(() => closed.push('d'));
  assert.deepEqual(closed, ['a', 'b']);
});

test('the hello gate takes a nonce once: the same one again is a replay; past what it remembers, the oldest is forgotten', () => {
  const gate = new HelloGate(2, 2);
  assert.equal(gate.fresh('n1'), true);
  assert.equal(gate.fresh('n1'), false);
  assert.equal(gate.fresh('n2'), true);
  assert.equal(gate.fresh('n3'), true);
  assert.equal(gate.fresh('n2'), false);
  assert.equal(gate.fresh('n1'), true);
});
