// The node agent's entry point (src/agent/main.ts), run as srun runs it: a SIGUSR1
// (Slurm's, ahead of a time limit) that comes while the agent still waits for its
// coordinator's welcome opens no debugger port; a refusal is one line.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Channel } from '../../dist/wire/channel.js';
import { proveAnswer } from '../../dist/wire/hello-proof.js';
import { builtEntry } from '../../dist/util/package-root.js';
import { tempDir } from '../helpers.js';

const SECRET = 's'.repeat(64);

/** The agent, as srun starts it, connected to a listener of the test's (no coordinator): its hello read. */
async function agentAt(t: TestContext) {
  const path = join(tempDir(t), 'coord.sock');
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  t.after(() => server.close());
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const agent = spawn(process.execPath, [builtEntry('agent/main', true)], {
    env: { PATH: process.env.PATH, CKPT_AGENT_COORD: `unix:${path}`, CKPT_JOB_ID: 'j1', CKPT_JOB_SECRET: SECRET, CKPT_AGENT_BIND: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => agent.kill('SIGKILL'));
  let stderr = '';
  agent.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
  // Connected, its hello sent: it waits for the welcome.
  const coord = new Channel(await accepted);
  const hello = await coord.next(30_000, 'the agent hello');
  assert.equal(hello.role, 'agent');
  return { path, agent, coord, hello, exited, stderr: () => stderr };
}

test('SIGUSR1 before the welcome opens no debugger port; a refusal ends the agent with one line', { timeout: 60_000 }, async (t) => {
  const { agent, coord, hello, exited, stderr: err } = await agentAt(t);
  process.kill(agent.pid!, 'SIGUSR1');
  // Refused after the signal (by the coordinator: its refusal proves the secret): the agent handles both and ends.
  coord.send({ type: 'error', message: 'not this node', proof: proveAnswer(SECRET, 'error', hello.nonce as string) });
  assert.equal(await exited, 1);
  assert.doesNotMatch(err(), /Debugger listening/);
  // Its connection left open by the coordinator: the agent closes it and ends all the same.
  assert.match(err().trim(), /^ckpt agent: not this node \[ECKPT_[A-Z_]+\]$/);
});

test('a stranger at the coordinator\'s address that welcomes the agent without proving the job secret: the agent ends with one line, and its hello carried no secret', { timeout: 60_000 }, async (t) => {
  const { path, coord, hello, exited, stderr } = await agentAt(t);
  assert.ok(!JSON.stringify(hello).includes(SECRET));
  assert.equal(hello.to, `unix:${path}`);
  coord.send({ type: 'welcome', v: hello.v, job: 'j1', size: 2 });
  assert.equal(await exited, 1);
  assert.equal(stderr().trim(), `ckpt agent: what answers at unix:${path} is not this job's coordinator (its welcome does not prove the job secret) [ECKPT_OOB_AUTH]`);
});

test('a refusal that does not prove the job secret: the agent ends saying what answers there, not what the refusal says', { timeout: 60_000 }, async (t) => {
  const { path, coord, exited, stderr } = await agentAt(t);
  coord.send({ type: 'error', message: 'not this node' });
  assert.equal(await exited, 1);
  assert.equal(stderr().trim(), `ckpt agent: what answers at unix:${path} is not this job's coordinator (its error does not prove the job secret) [ECKPT_OOB_AUTH]`);
});
