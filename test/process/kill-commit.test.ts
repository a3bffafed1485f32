// `--kill` (then: 'terminate') when the commit fails: the process must survive it,
// its TCP connection working both ways and CRIU's nftables lock table gone. The
// disk fills up for real at CRIU's post-dump stage — the dump is whole, the commit
// comes next — through the library's notify hook: no fault is faked.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { checkpointProcess } from '../../dist/process/external.js';
import { listLockTables, lockTableName } from '../../dist/isolate/cleanup.js';
import { dumpRunId } from '../../dist/criu/images.js';
import { alive, ckpt, fillUp, mountTmpfs, needCriu, procState, Program, tempDir } from '../helpers.js';

/** Connects to PORT, says so, and answers every line it gets with `echo <line>`. */
const ECHO_PEER = `
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
print('connected', flush=True)
f = s.makefile('rwb', buffering=0)
while True:
    try:
        line = f.readline()
    except OSError as e:
        print('error', e, flush=True)
        sys.exit(3)
    if not line:
        print('eof', flush=True)
        sys.exit(0)
    f.write(b'echo ' + line)
`;

/** No socket at all: counts, one line per tick. */
const TICKER = `
import sys, time
n = 0
while True:
    n += 1
    print('tick', n, flush=True)
    time.sleep(0.02)
`;

/** The server end of the peer's connection: sends a line, waits for its echo. */
class EchoServer {
  private readonly server = net.createServer();
  private socket: net.Socket | undefined;
  private received = '';
  private waiters: (() => void)[] = [];
  closed = false;

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async accepted(): Promise<void> {
    if (this.socket) return;
    this.socket = await new Promise<net.Socket>((resolve) => this.server.once('connection', resolve));
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.received += d;
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Sends `line` and waits for `echo line` (bounded, never timed otherwise). */
  async roundTrip(line: string, timeoutMs = 20_000): Promise<void> {
    const want = `echo ${line}\n`;
    this.socket!.write(`${line}\n`);
    const deadline = Date.now() + timeoutMs;
    while (!this.received.includes(want)) {
      if (this.closed) throw new Error(`connection closed before '${want.trim()}'; got ${JSON.stringify(this.received)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no '${want.trim()}' within ${timeoutMs} ms; got ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket?.destroy();
    this.server.close();
  }
}

async function startPeer(t: TestContext): Promise<{ peer: Program; server: EchoServer }> {
  const server = new EchoServer();
  t.after(() => server.close());
  const port = await server.listen();
  const peer = new Program('python3', ['-c', ECHO_PEER, String(port)], {}, { session: true });
  t.after(() => peer.kill());
  await Promise.all([server.accepted(), peer.waitFor(/^connected$/)]);
  await server.roundTrip('before');
  return { peer, server };
}

/** The store on a tmpfs that the hook fills to the last byte at post-dump. */
function fullAtPostDump(t: TestContext) {
  const mnt = mountTmpfs(t, '128m');
  const store = join(mnt, 'store');
  const disk = {
    mnt,
    store,
    stages: [] as string[],
    /** This dump's CRIU run id, which names its nftables table (read at post-dump). */
    runId: undefined as string | undefined,
    onNotify: (stage: string) => {
      disk.stages.push(stage);
      if (stage !== 'post-dump') return;
      const partial = readdirSync(store).find((n) => n.startsWith('.partial-'));
      if (partial) disk.runId = dumpRunId(join(store, partial, 'images'));
      fillUp(join(mnt, 'filler'));
    },
  };
  return disk;
}

/** Nothing of the attempt is left in the store: no snapshot, no .partial-* directory. */
function assertStoreEmpty(mnt: string, store: string): void {
  assert.deepEqual(readdirSync(mnt), ['filler']);
  assert.ok(!existsSync(store) || readdirSync(store).length === 0, `store left: ${existsSync(store) ? readdirSync(store).join(',') : ''}`);
}

/** Whether this run's lock table is there (other tests may add and remove their own meanwhile). */
const tableLeft = async (runId: string): Promise<boolean> => (await listLockTables()).includes(lockTableName(runId));

test('--kill, commit fails (disk full) with an established TCP connection: process runs on, connection works, no lock table left', async (t) => {
  if (!(await needCriu(t))) return;
  const { peer, server } = await startPeer(t);
  const disk = fullAtPostDump(t);
  await assert.rejects(
    checkpointProcess({ pid: peer.pid, dir: disk.store, then: 'terminate', onNotify: disk.onNotify }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ECKPT_NO_SPACE', `${err.code}: ${err.message}`);
      return true;
    },
  );
  assert.ok(disk.stages.includes('post-dump'), `the dump went through: ${disk.stages.join(',')}`);
  assert.ok(alive(peer.pid), 'the process is alive');
  assert.notEqual(procState(peer.pid), 'T', 'and not left stopped');
  // Both ways: the server's line reaches the process, its answer comes back.
  await server.roundTrip('after the failed checkpoint');
  await server.roundTrip('and again');
  assert.ok(!peer.lines.some((l) => l.startsWith('error')), `the socket never failed: ${peer.lines.join('|')}`);
  assert.ok(disk.runId, 'the dump locked the network (its run id names the table)');
  assert.ok(!(await tableLeft(disk.runId)), 'no CRIU nftables table left');
  assertStoreEmpty(disk.mnt, disk.store);
});

test('--kill, commit fails (disk full), no TCP connection: process runs on, nothing left', async (t) => {
  if (!(await needCriu(t))) return;
  const ticker = new Program('python3', ['-c', TICKER], {}, { session: true });
  t.after(() => ticker.kill());
  await ticker.waitFor(/^tick 3$/);
  const disk = fullAtPostDump(t);
  await assert.rejects(
    checkpointProcess({ pid: ticker.pid, dir: disk.store, then: 'terminate', onNotify: disk.onNotify }),
    (err: Error & { code?: string }) => err.code === 'ECKPT_NO_SPACE',
  );
  assert.ok(disk.stages.includes('post-dump'));
  const last = Number(/^tick (\d+)$/.exec(ticker.lines.filter((l) => l.startsWith('tick')).at(-1)!)![1]);
  await ticker.waitFor(new RegExp(`^tick ${last + 3}$`));
  assert.ok(alive(ticker.pid));
  if (disk.runId) assert.ok(!(await tableLeft(disk.runId)));
  assertStoreEmpty(disk.mnt, disk.store);
});

test('--kill that commits, with a TCP connection: killed at the snapshot, snapshot intact, the restore carries the connection on', async (t) => {
  if (!(await needCriu(t))) return;
  const { peer, server } = await startPeer(t);
  const store = join(tempDir(t), 'store');
  const r = await ckpt(['checkpoint', '--pid', String(peer.pid), '--dir', store, '--kill', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).endState, 'terminate');
  const exit = await peer.exited;
  assert.equal(exit.signal, 'SIGKILL');
  assert.ok(!server.closed, 'the peer saw no close: the socket went in repair mode');
  // The lock stays for the restore (the connection must not be reset meanwhile).
  const runId = dumpRunId(join(store, '000001', 'images'));
  assert.ok(runId && (await tableLeft(runId)), 'its lock table is kept for the restore');
  const v = await ckpt(['snapshots', 'verify', store]);
  assert.equal(v.code, 0, `${v.stdout}${v.stderr}`);
  assert.ok(existsSync(join(store, '000001', 'images', 'dump.log')), "CRIU's log is in the snapshot");

  const log = join(tempDir(t), 'restart.log');
  const rs = await ckpt(['restart', store, '--detach', '--log', log]);
  assert.equal(rs.code, 0, rs.stderr);
  const pid = Number(/restarted pid (\d+)/.exec(rs.stdout)?.[1]);
  assert.ok(pid > 1, rs.stdout);
  t.after(() => {
    if (pid > 1 && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await server.roundTrip('after the restore');
  assert.ok(!(await tableLeft(runId)), 'the restore took the lock table down');
});
