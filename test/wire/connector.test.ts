// The connector seam: how a rank listens and connects (unix, tcp), and which
// address it hands out to its peers — its own host's, never a wildcard. Traffic
// goes to loopback addresses only; other addresses appear as values, never dialled.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { advertisedPeerHost, buildConnector, connectorFor, isLoopback, isWildcard, type Connector } from '../../dist/wire/connector.js';
import type { Address } from '../../dist/wire/channel.js';
import { controlRequest } from '../../dist/control/job-control.js';
import { privateStateDir, runJob, waitForJobLine as waitForLine } from '../helpers.js';

before(() => privateStateDir());

const tcp = (host: string, port = 4000): Address => ({ transport: 'tcp', host, port });
/** A coordinator on another host (TEST-NET-1: documentation only, never dialled here). */
const REMOTE = tcp('192.0.2.10');
const noResolver = async (): Promise<string> => {
  throw new Error('the host name must not be looked up here');
};

describe('the address a rank hands out to its peers', () => {
  test('a loopback coordinator: every rank is on this host, the coordinator\'s loopback address it is', async () => {
    assert.equal(await advertisedPeerHost({ home: tcp('127.0.0.1'), env: {}, resolveHost: noResolver }), '127.0.0.1');
    assert.equal(await advertisedPeerHost({ home: tcp('::1'), env: {}, resolveHost: noResolver }), '::1');
    // Bound to the IPv4 wildcard, an IPv6 loopback would not reach it.
    assert.equal(await advertisedPeerHost({ home: tcp('::1'), env: {}, resolveHost: noResolver }, '0.0.0.0'), '127.0.0.1');
  });

  test('CKPT_PEER_HOST comes first, whatever the coordinator', async () => {
    for (const home of [tcp('127.0.0.1'), REMOTE]) {
      assert.equal(await advertisedPeerHost({ home, env: { CKPT_PEER_HOST: '198.51.100.7' }, resolveHost: noResolver }), '198.51.100.7');
      assert.equal(await advertisedPeerHost({ home, env: { CKPT_PEER_HOST: 'node7.cluster' }, resolveHost: noResolver }), 'node7.cluster');
    }
    // …and is where the rank listens.
    const c = connectorFor(REMOTE, { CKPT_PEER_HOST: '198.51.100.7' });
    assert.deepEqual(await c.listenAddress('r1'), tcp('198.51.100.7', 0));
  });

  test('a coordinator on another host: the address this host\'s name resolves to', async () => {
    const asked: number[] = [];
    const resolveHost = async (family: 0 | 4) => {
      asked.push(family);
      return '203.0.113.5';
    };
    assert.equal(await advertisedPeerHost({ home: REMOTE, env: {}, resolveHost }), '203.0.113.5');
    assert.equal(await advertisedPeerHost({ home: REMOTE, env: { CKPT_PEER_HOST: '0.0.0.0' }, resolveHost }, '0.0.0.0'), '203.0.113.5');
    // A socket bound to 0.0.0.0 takes IPv4 only: so is the address looked up.
    assert.deepEqual(asked, [0, 4]);
    assert.deepEqual(await buildConnector('tcp', { home: REMOTE, env: {}, resolveHost }).listenAddress('r0'), tcp('203.0.113.5', 0));
  });

  test('by default the host name is looked up (dns.lookup(os.hostname()))', async () => {
    const expected = await lookup(hostname()).then(
      (a) => a.address,
      () => undefined,
    );
    const got = advertisedPeerHost({ home: REMOTE, env: {} });
    if (expected !== undefined) assert.equal(await got, expected);
    else await assert.rejects(got, (e: any) => e.code === 'ECKPT_OOB_UNREACHABLE' && /CKPT_PEER_HOST/.test(e.message));
  });

  test('a wildcard is never handed out', async () => {
    assert.ok(isWildcard('0.0.0.0') && isWildcard('::') && !isWildcard('127.0.0.1'));
    assert.ok(isLoopback('127.0.0.1') && isLoopback('127.1.2.3') && isLoopback('::1') && isLoopback('::ffff:127.0.0.1') && isLoopback('localhost'));
    assert.ok(!isLoopback('0.0.0.0') && !isLoopback('192.0.2.10') && !isLoopback('::'));
    // CKPT_PEER_HOST=0.0.0.0: listen everywhere, hand out the rule's next answer.
    assert.equal(await advertisedPeerHost({ home: tcp('127.0.0.1'), env: { CKPT_PEER_HOST: '0.0.0.0' }, resolveHost: noResolver }, '0.0.0.0'), '127.0.0.1');
    // A coordinator bound to a wildcard is on this host: so are its ranks.
    assert.equal(await advertisedPeerHost({ home: tcp('0.0.0.0'), env: {}, resolveHost: noResolver }, '0.0.0.0'), '127.0.0.1');
    assert.equal(await advertisedPeerHost({ home: tcp('::'), env: {}, resolveHost: noResolver }, '::'), '::1');

    const c = connectorFor(tcp('127.0.0.1'), { CKPT_PEER_HOST: '0.0.0.0' });
    const at = await c.listenAddress('r2');
    assert.deepEqual(at, tcp('0.0.0.0', 0));
    const { server, bound, advertised } = await c.listen(at, echo);
    try {
      assert.equal(bound.transport === 'tcp' && bound.host, '0.0.0.0');
      assert.ok(advertised.transport === 'tcp' && advertised.host === '127.0.0.1' && advertised.port === (bound as { port: number }).port && advertised.port > 0);
      assert.equal(await roundTrip(c, advertised), 'ping');
    } finally {
      server.close();
    }
  });

  test('a CKPT_PEER_HOST that is no host is refused', async () => {
    await assert.rejects(advertisedPeerHost({ home: REMOTE, env: { CKPT_PEER_HOST: 'not a host' } }), (e: any) => e.code === 'ECKPT_USAGE');
  });
});

/** Answers each connection with what it was sent, then ends. */
function echo(socket: Socket): void {
  socket.on('data', (d) => socket.end(d));
  socket.on('error', () => {});
}

/** Connects through the connector, sends "ping", reads the echo. */
async function roundTrip(c: Connector, address: Address): Promise<string> {
  const socket = await c.reach(address, 5000, 'the test listener');
  socket.end('ping');
  let text = '';
  for await (const chunk of socket) text += String(chunk);
  return text;
}

/** The same through connect() with `onread`: bytes land in the caller's buffer. */
function roundTripOnread(c: Connector, address: Address): Promise<string> {
  const buffer = Buffer.alloc(64);
  let text = '';
  return new Promise((resolve, reject) => {
    const socket = c.connect(address, {
      onread: {
        buffer: () => buffer,
        callback: (n) => {
          text += buffer.subarray(0, n).toString();
          return true;
        },
      },
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.end('pong');
  });
}

describe('listening and connecting through the connector', () => {
  test('unix: a socket in the job\'s directory, beside the coordinator\'s', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-connector-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const c = connectorFor({ transport: 'unix', path: join(dir, 'coord.sock') });
    assert.equal(c.transport, 'unix');
    const at = await c.listenAddress('r3');
    assert.deepEqual(at, { transport: 'unix', path: join(dir, 'r3.sock') });
    const { server, advertised } = await c.listen(at, echo);
    try {
      assert.deepEqual(advertised, at);
      assert.equal(await roundTrip(c, advertised), 'ping');
      assert.equal(await roundTripOnread(c, advertised), 'pong');
    } finally {
      server.close();
    }
  });

  test('tcp: an ephemeral port on the loopback coordinator\'s host', async () => {
    const c = connectorFor(tcp('127.0.0.1', 5555), {});
    assert.equal(c.transport, 'tcp');
    const at = await c.listenAddress('r0');
    assert.deepEqual(at, tcp('127.0.0.1', 0));
    const { server, advertised } = await c.listen(at, echo, { pauseOnConnect: false });
    try {
      assert.ok(advertised.transport === 'tcp' && advertised.host === '127.0.0.1' && advertised.port > 0);
      assert.equal(await roundTrip(c, advertised), 'ping');
      assert.equal(await roundTripOnread(c, advertised), 'pong');
    } finally {
      server.close();
    }
  });

  test('a connector takes addresses of its own transport only', async () => {
    const unix = buildConnector('unix');
    const tcpc = buildConnector('tcp');
    assert.throws(() => unix.connect(tcp('127.0.0.1', 1)), (e: any) => e.code === 'ECKPT_USAGE');
    assert.throws(() => tcpc.connect({ transport: 'unix', path: '/nonexistent.sock' }), (e: any) => e.code === 'ECKPT_USAGE');
    await assert.rejects(unix.listenAddress('r0'), (e: any) => e.code === 'ECKPT_USAGE');
    await assert.rejects(tcpc.listen({ transport: 'unix', path: '/nonexistent.sock' }, echo), (e: any) => e.code === 'ECKPT_USAGE');
  });
});

describe('a job over tcp', () => {
  test('a ring of 4 still runs', async () => {
    const r = await runJob('ring.mjs', 4, { oob: 'tcp', argv: ['2'] });
    assert.equal(r.result.status, 0, `job failed: ${r.result.error?.message}\n${r.stderr.flat().join('\n')}`);
    assert.equal(r.results.get(0).counter, 8);
  });

  for (const peerHost of ['127.0.0.1', '0.0.0.0']) {
    test(`CKPT_PEER_HOST=${peerHost}: the ranks hand out 127.0.0.1, and link up`, async () => {
      let peers: string[] = [];
      const r = await runJob('wait.mjs', 3, {
        oob: 'tcp',
        env: { CKPT_PEER_HOST: peerHost },
        killGraceMs: 500,
        whileRunning: async (job) => {
          // "ready" follows a barrier: every rank has linked up with the others.
          await waitForLine(job, /^ready/, 3);
          try {
            peers = ((await controlRequest(job.record(), 'status')).status as { peers: string[] }).peers;
          } finally {
            job.kill('ended by the test');
          }
        },
      });
      assert.match(r.result.error!.message, /ended by the test/);
      assert.equal(peers.length, 3);
      for (const p of peers) assert.match(p, /^tcp:127\.0\.0\.1:\d+$/);
    });
  }
});
