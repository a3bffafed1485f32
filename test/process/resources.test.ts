// A process holding a TCP listening socket, an established TCP connection and a
// child process is checkpointed from outside with --kill and restored: all three
// work afterwards, and its counter goes on from where it was.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { dumpedPids } from '../../dist/criu/images.js';
import { alive, ckpt, ckptProgram, fixture, needCriu, procState, Program, tempDir } from '../helpers.js';

/** One request to the fixture's listening port: its whole answer, or the connection error. */
function ask(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    sock.setEncoding('utf8').on('data', (d: string) => (data += d));
    sock.on('end', () => resolve(data.trim()));
    sock.on('error', reject);
    sock.setTimeout(10_000, () => sock.destroy(new Error('no answer in 10 s')));
  });
}

/** Lines arriving on the test's end of the established connection. */
class Lines {
  readonly lines: string[] = [];
  ended = false;
  constructor(readonly sock: Socket) {
    createInterface({ input: sock }).on('line', (l) => this.lines.push(l));
    sock.on('end', () => (this.ended = true));
    sock.on('close', () => (this.ended = true));
  }
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${re} on the connection; got ${this.lines.join(' | ')}`);
      await sleep(20);
    }
  }
}


/**
 * server.mjs (a listening port, an established connection to the test's own server,
 * a child) started in its own session; resolves once it is ready.
 */
async function startServerTree(t: TestContext) {
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const program = new Program(process.execPath, [fixture('process/server.mjs'), String((server.address() as { port: number }).port)], {
    UV_USE_IO_URING: '0',
  }, { session: true });
  t.after(() => program.kill());
  const [, port, child] = /port=(\d+) child=(\d+)/.exec(await program.waitFor(/^ready /))!.map(Number) as [number, number, number];
  t.after(() => {
    if (alive(child)) process.kill(child, 'SIGKILL');
  });
  const conn = new Lines(await accepted);
  t.after(() => conn.sock.destroy());
  return { program, port, child, conn };
}

test('a listening socket, an established connection and a child survive --kill and restart', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');

  // The peer of the established connection: the test's own server.
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const peerPort = (server.address() as { port: number }).port;

  const program = new Program(process.execPath, [fixture('process/server.mjs'), String(peerPort)], { UV_USE_IO_URING: '0' }, { session: true });
  t.after(() => program.kill());
  const ready = await program.waitFor(/^ready /);
  const [, port, childPid] = /port=(\d+) child=(\d+)/.exec(ready)!.map(Number) as [number, number, number];
  const child = childPid;
  t.after(() => {
    if (alive(child)) process.kill(child, 'SIGKILL');
  });
  const conn = new Lines(await accepted);
  t.after(() => conn.sock.destroy());

  // Before: the port answers, the connection carries data both ways, the child answers.
  assert.equal(await ask(port), `counter=1 child=${child} answer=child ${child} q1`);
  conn.sock.write('ping 1\n');
  assert.equal(await conn.waitFor(/^pong 1 /), 'pong 1 counter=2');
  conn.sock.write('hello before\n');
  await program.waitFor(/^from-peer hello before$/);

  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).endState, 'terminate');
  // The processes CRIU wrote, as its pstree.img lists them: the root first.
  assert.deepEqual(dumpedPids(join(store, '000001', 'images')), [program.pid, child]);
  assert.equal((await program.exited).signal, 'SIGKILL');
  for (let i = 0; i < 100 && alive(child); i++) await sleep(20);
  assert.ok(!alive(child), 'the child was killed with its parent');
  assert.ok(!conn.ended, "the test's end of the connection is still open");

  const restarted = ckptProgram(['restart', store]);
  t.after(() => restarted.kill('SIGTERM'));
  // The restore is done once the listening port answers again.
  let answer: string | undefined;
  for (let i = 0; i < 200 && answer === undefined; i++) {
    answer = await ask(port).catch(() => undefined);
    if (answer === undefined) {
      assert.equal(restarted.child.exitCode, null, `ckpt restart ended early: ${restarted.stderr}`);
      await sleep(50);
    }
  }
  // A new client: the counter goes on from the snapshot's value, the child answers with its old pid.
  assert.equal(answer, `counter=3 child=${child} answer=child ${child} q3`);
  assert.ok(alive(child), 'the child is alive with its pid');

  // The established connection still carries data both ways.
  conn.sock.write('ping 2\n');
  assert.equal(await conn.waitFor(/^pong 2 /), 'pong 2 counter=4');
  conn.sock.write('hello after\n');
  await restarted.waitFor(/^from-peer hello after$/);
  assert.ok(!conn.ended, 'the connection is still open');
  assert.ok(!restarted.lines.some((l) => /^peer (closed|error)/.test(l)), restarted.lines.join(' | '));
  assert.equal(await ask(port), `counter=5 child=${child} answer=child ${child} q5`);

  // SIGTERM to `ckpt restart` reaches the restored process; ckpt exits with its status.
  restarted.child.kill('SIGTERM');
  const exit = await restarted.exited;
  assert.equal(exit.code, 128 + 15, restarted.stderr);
});

test('--stop then ckpt resume: the established connection and the listening port still work', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  const { program, port, child, conn } = await startServerTree(t);
  conn.sock.write('ping 1\n');
  assert.equal(await conn.waitFor(/^pong 1 /), 'pong 1 counter=1');

  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--stop']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(procState(program.pid), 'T');
  assert.equal(procState(child), 'T');
  const resumed = await ckpt(['resume', String(program.pid)]);
  assert.equal(resumed.code, 0, resumed.stderr);

  conn.sock.write('ping 2\n');
  assert.equal(await conn.waitFor(/^pong 2 /), 'pong 2 counter=2');
  conn.sock.write('hello after\n');
  await program.waitFor(/^from-peer hello after$/);
  assert.equal(await ask(port), `counter=3 child=${child} answer=child ${child} q3`);
  assert.ok(!conn.ended);
});

test('a --kill dump with TCP connections that is never restored: snapshots rm also removes its network lock table', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  const { program } = await startServerTree(t);

  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill', '--json']);
  assert.equal(r.code, 0, r.stderr);
  await program.exited;
  const tables = () => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  const manifest = JSON.parse(readFileSync(join(store, '000001', 'manifest.json'), 'utf8'));
  assert.equal(manifest.process.networkLock, 'nftables', 'a tree with TCP sockets is dumped under the lock');
  const before = tables();

  const rm = await ckpt(['snapshots', 'rm', store, '--seq', '1', '--json']);
  assert.equal(rm.code, 0, rm.stderr);
  const out = JSON.parse(rm.stdout);
  assert.match(out.lockTable, /^CRIU-[0-9a-f-]+$/);
  assert.ok(before.includes(`table inet ${out.lockTable}\n`), `the lock table was there: ${before}`);
  assert.ok(!tables().includes(`table inet ${out.lockTable}\n`), 'and is gone');
  assert.ok(!existsSync(join(store, '000001')));
});
