// The node agent's relay of its ranks' connections: self's `arrived` reports stay at
// the agent and cross to the coordinator in the reach round's one fan-out reply per
// node, never one relayed message per rank. Real sockets and channels; the ranks'
// side is written frame by frame (what a rank sends is fixed by the protocol).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { Channel } from '../../dist/wire/channel.js';
import { decodeControl, encodeControl, FrameDecoder, FrameKind, type ControlMessage } from '../../dist/wire/frame.js';
import { RankRelay } from '../../dist/agent/rank-relay.js';

/** A connected pair of channels: the agent's end (given to the relay) and the coordinator's. */
async function linkPair(): Promise<{ agent: Channel; coord: Channel; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => client.once('connect', r));
  const agent = new Channel(client);
  const coord = new Channel(await accepted);
  return { agent, coord, close: () => (agent.destroy(), coord.destroy(), server.close()) };
}

/** A rank's connection to the relay: it says hello as rank `rank`. */
async function rankConn(address: string, rank: number): Promise<Socket> {
  assert.match(address, /^unix:\//, 'the relay listens on a unix socket');
  const s = connect({ path: address.slice('unix:'.length) });
  await new Promise<void>((r) => s.once('connect', r));
  s.write(encodeControl({ type: 'hello', v: 1, role: 'rank', job: 'j', rank, pid: 1000 + rank, secret: 'x', peer: 'tcp:127.0.0.1:1' }));
  return s;
}

/** The control messages inside a `relay` message's frames. */
function relayed(m: ControlMessage): ControlMessage[] {
  const out: ControlMessage[] = [];
  new FrameDecoder((f) => void (f.kind === FrameKind.CONTROL && out.push(decodeControl(f.payload))), { control: 1 << 20, data: 0 }).push(Buffer.from(String(m.data), 'base64'));
  return out;
}

test('the relay listens on a unix socket in a private directory (0700), removed when it closes', async (t) => {
  const { agent, close } = await linkPair();
  t.after(close);
  const relay = new RankRelay(agent);
  const address = await relay.listen();
  const dir = dirname(address.slice('unix:'.length));
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  relay.close();
  assert.equal(existsSync(dir), false);
});

test("a node's ranks' arrived reports reach the coordinator in one message: the reach fan-out's reply", async (t) => {
  const { agent, coord, close } = await linkPair();
  t.after(close);
  const relay = new RankRelay(agent);
  t.after(() => relay.close());
  const address = await relay.listen();
  // The agent serves a fan-out as node-agent.ts does.
  agent.on('message', (m) => {
    if (m.type === 'request' && m.op === 'fanout') void relay.fanout(m as never).then((replies) => agent.send({ type: 'reply', id: m.id, ok: true, replies }));
  });
  const seen: ControlMessage[] = [];
  const hellos = new Set<number>();
  let helloWait: (() => void) | undefined;
  coord.on('message', (m) => {
    seen.push(m);
    for (const x of m.type === 'relay' ? relayed(m) : []) if (x.type === 'hello' || x.type === 'marker') hellos.add(x.rank as number), helloWait?.();
  });
  const until = (n: number) =>
    new Promise<void>((r) => {
      helloWait = () => hellos.size >= n && r();
      helloWait();
    });

  const ranks = await Promise.all([0, 1, 2, 3].map((r) => rankConn(address, r)));
  await until(4);
  // Ranks 0–2 report before anyone asks; each then sends a message the relay passes on
  // (the relay reads a connection in order: once it is through, the report was taken).
  hellos.clear();
  const ahead = until(3);
  for (const r of [0, 1, 2]) {
    ranks[r]!.write(encodeControl({ type: 'arrived', seq: 4, safePoint: 7, written: [r, 0, 0, 0] }));
    ranks[r]!.write(encodeControl({ type: 'marker', rank: r }));
  }
  await ahead;

  const before = seen.length;
  const reply = coord.request(
    {
      type: 'request',
      op: 'fanout',
      rankOp: 'ckpt-reach',
      timeoutMs: 60_000,
      items: [0, 1, 2, 3].map((rank) => ({ rank, body: {}, arrival: { seq: 4, safePoint: 7 } })),
    },
    60_000,
    'the fan-out',
  );
  // Rank 3 reports after the request: a report of another checkpoint does not count.
  ranks[3]!.write(encodeControl({ type: 'arrived', seq: 3, safePoint: 7, written: [9, 9, 9, 9] }));
  ranks[3]!.write(encodeControl({ type: 'arrived', seq: 4, safePoint: 7, written: [0, 0, 0, 3] }));
  const answer = await reply;
  assert.deepEqual(
    (answer.replies as { rank: number; reply: { written: number[] } }[]).map((x) => [x.rank, x.reply.written]),
    [0, 1, 2, 3].map((r) => [r, r === 3 ? [0, 0, 0, 3] : [r, 0, 0, 0]]),
  );
  // Across the link: the request's one reply (taken by the request), nothing else, and
  // no report relayed one by one at any time.
  assert.deepEqual(seen.slice(before).map((m) => m.type), []);
  assert.equal(seen.flatMap((m) => (m.type === 'relay' ? relayed(m) : [])).filter((x) => x.type === 'arrived').length, 0);

  // A rank whose connection closes before its report: its item says why, at once.
  const lost = coord.request({ type: 'request', op: 'fanout', rankOp: 'ckpt-reach', timeoutMs: 60_000, items: [{ rank: 2, body: {}, arrival: { seq: 5, safePoint: 8 } }] }, 60_000, 'the fan-out');
  ranks[2]!.destroy();
  const gone = (await lost).replies as { rank: number; code: string; error: string }[];
  assert.equal(gone[0]!.code, 'ECKPT_OOB_UNREACHABLE');
  assert.match(gone[0]!.error, /rank 2 (lost its connection|is not connected)/);
  for (const s of ranks) s.destroy();
});
