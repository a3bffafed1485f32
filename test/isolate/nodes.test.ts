// The store of an isolated job across nodes (isolate/nodes.ts) is input: a
// nodes.json that names anything but HOST/SEQ snapshots of Slurm node names is
// refused with one line before anything runs; Open MPI's launch agent
// (node-parts.ts) writes its request beside itself without orted's --daemonize.
// The real job across nodes: test/slurm/isolate-nodes.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, eventually, isOneLineError, tempDir } from '../helpers.js';
import { AGENT_SCRIPT } from '../../dist/isolate/node-parts.js';

const inAllocation = { SLURM_JOB_ID: '999999', SLURM_JOB_NUM_NODES: '2' };

test('ckpt restart of a store across nodes: a bad nodes.json is one line, ECKPT_SNAPSHOT_FORMAT, and nothing runs', async (t) => {
  const bad = [
    '{not json',
    JSON.stringify({ format: 'ckpt-isolated-nodes/2', name: 'x', nodes: [{ host: 'n1', name: 'x', snapshot: 'n1/000001' }] }),
    JSON.stringify({ format: 'ckpt-isolated-nodes/1', name: 'x', nodes: [] }),
    JSON.stringify({ format: 'ckpt-isolated-nodes/1', name: 'x', nodes: [{ host: '../n1', name: 'x', snapshot: '../n1/000001' }] }),
    JSON.stringify({ format: 'ckpt-isolated-nodes/1', name: 'x', nodes: [{ host: 'n1', name: 'x', snapshot: 'n1/../../etc' }] }),
    JSON.stringify({ format: 'ckpt-isolated-nodes/1', name: 'x', nodes: [{ host: 'n1', name: 'x', snapshot: 'n2/000001' }] }),
    JSON.stringify({ format: 'ckpt-isolated-nodes/1', name: 'x', nodes: [{ host: '-w', name: 'x', snapshot: '-w/000001' }] }),
    JSON.stringify({ format: 'ckpt-isolated-nodes/1', name: 'x', nodes: [{ host: 'n1', name: 'x', snapshot: 'n1/000001' }, { host: 'n1', name: 'y', snapshot: 'n1/000002' }] }),
  ];
  for (const [i, text] of bad.entries()) {
    const store = join(tempDir(t), `store${i}`);
    mkdirSync(store);
    writeFileSync(join(store, 'nodes.json'), text);
    // No srun on PATH: were anything started, the error would be another one.
    const r = await ckpt(['restart', store], { ...inAllocation, PATH: '/nonexistent' });
    assert.equal(r.code, 1, `${text}: ${r.stderr}`);
    assert.ok(isOneLineError(r.stderr), r.stderr);
    assert.match(r.stderr, /\[ECKPT_SNAPSHOT_FORMAT\]/, text);
  }
  // Not a regular file: a FIFO (never waited on), a link to /dev/zero (never read without end).
  for (const plant of [(p: string) => execFileSync('mkfifo', [p]), (p: string) => symlinkSync('/dev/zero', p)]) {
    const store = join(tempDir(t), 'planted');
    mkdirSync(store);
    plant(join(store, 'nodes.json'));
    const r = await ckpt(['restart', store], { ...inAllocation, PATH: '/nonexistent' });
    assert.ok(isOneLineError(r.stderr) && /\[ECKPT_SNAPSHOT_FORMAT\]$/.test(r.stderr.trim()), r.stderr);
  }
  const store = join(tempDir(t), 'outside');
  mkdirSync(store);
  writeFileSync(join(store, 'nodes.json'), bad[1]!);
  const outside = await ckpt(['restart', store], { SLURM_JOB_ID: '', SLURM_JOBID: '' });
  assert.match(outside.stderr, /inside its Slurm allocation .*\[ECKPT_NO_ALLOCATION\]/);
});

test("Open MPI's launch agent: one request (host, orted's command line without --daemonize), exit 0 on ckpt's answer", async (t) => {
  const dir = tempDir(t);
  const agent = join(dir, 'orted-agent');
  writeFileSync(agent, AGENT_SCRIPT, { mode: 0o700 });
  const child = spawn('bash', [agent, 'n2', 'orted', '--daemonize', '-mca', 'ess', '"env"'], { stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  const request = () => readdirSync(dir).find((n) => n.endsWith('.req'));
  assert.ok(await eventually(() => request() !== undefined, 10_000), 'a request');
  const req = join(dir, request()!);
  assert.deepEqual(readFileSync(req, 'utf8').split('\n').map((l) => l.trim()), ['n2', 'orted -mca ess "env"', '']);
  writeFileSync(req.replace(/\.req$/, '.ok'), '');
  assert.equal(await exited, 0);
  assert.ok(!existsSync(req.replace(/\.req$/, '.err')));
});
