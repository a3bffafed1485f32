// A real database under load in transparent mode: PostgreSQL from Debian, running
// as its own user (postgres) inside `ckpt run --isolate --net`, pgbench clients in
// the same job running a fixed number of transactions. Checkpointed (--term) while
// clients stand at the fixture's gate inside open transactions, restarted, the gate
// opened: pgbench finishes with every transaction
// processed and none failed, pgbench's balance invariants hold, and the server
// shuts down cleanly. It needs System V shared memory in the job's own IPC
// namespace, and the job's user namespace (root lacks CAP_SYS_RESOURCE here).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, fixture, needCriu, tempDir, waitForListedJob } from '../helpers.js';

const CLIENTS = 4;
const PER_CLIENT = 500;

function postgresInstalled(): boolean {
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
  } catch {
    return false;
  }
  return existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/postgres`));
}

function uidsBelow(pid: number, out = new Map<number, number>()): Map<number, number> {
  try {
    out.set(pid, Number(/^Uid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]));
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean)) uidsBelow(Number(c), out);
    }
  } catch {
    // gone
  }
  return out;
}

async function rootPidOf(env: NodeJS.ProcessEnv, name: string): Promise<number> {
  const r = await ckpt(['ps', '--json'], env);
  const job = (JSON.parse(r.stdout).jobs as { name: string; isolated: { rootPid: number } }[]).find((j) => j.name === name);
  assert.ok(job, r.stdout);
  return job.isolated.rootPid;
}

test('PostgreSQL under pgbench load, as user postgres: checkpoint --term mid-run, restart; every transaction accounted for, data consistent, clean shutdown', async (t: TestContext) => {
  if (!(await needCriu(t))) return;
  if (!postgresInstalled()) {
    if (process.env.CKPT_REQUIRE_CRIU === '1') assert.fail('PostgreSQL (Debian package postgresql) is not installed');
    t.skip('PostgreSQL is not installed');
    return;
  }
  const pgUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  // Outside /tmp (private inside the job); the data directory belongs to postgres.
  const dir = mkdtempSync('/var/tmp/ckpt-pg-test-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('chmod', ['0755', dir]);
  const data = join(dir, 'data');
  execFileSync('install', ['-d', '-m', '0700', '-o', 'postgres', '-g', 'postgres', data]);
  const script = join(dir, 'pgbench-job.sh');
  copyFileSync(fixture('isolate/pgbench-job.sh'), script);
  execFileSync('chmod', ['0755', script]);
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state') };
  const store = join(tempDir(t), 'store');

  const job = ckptProgram(['run', '--isolate', '--net', '--name', 'pg', '--', script, data, String(CLIENTS), String(PER_CLIENT)], env, dir);
  t.after(() => job.kill());
  // initdb, server start, pgbench -i, then the load, until a client stands at the
  // fixture's gate inside an open transaction: pgbench cannot end before the gate opens.
  await job.waitFor(/^at gate$/, 180_000);
  const root = await rootPidOf(env, 'pg');
  const uids = [...uidsBelow(root).values()];
  assert.ok(uids.filter((u) => u === pgUid).length >= 5, `the server (postmaster + workers) and pgbench run as postgres: ${uids.join(',')}`);

  const r = await ckpt(['checkpoint', 'pg', '--dir', store, '--term', '--json'], env);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  const out = JSON.parse(r.stdout) as { processes: number };
  assert.ok(out.processes >= 10, `postmaster, its workers, backends, pgbench and the shells (${out.processes})`);
  assert.equal((await job.exited).code, 85); // ended at its checkpoint
  assert.ok(!job.lines.some((l) => l.startsWith('pgbench exit')), 'checkpointed while pgbench ran');

  const restarted = ckptProgram(['restart', store], env);
  t.after(() => restarted.kill());
  await waitForListedJob('pg', env);
  const restoredUids = [...uidsBelow(await rootPidOf(env, 'pg')).values()];
  assert.ok(restoredUids.filter((u) => u === pgUid).length >= 5, `restored as postgres: ${restoredUids.join(',')}`);
  // The restored clients go on from inside their transactions once the gate opens.
  writeFileSync(join(dir, 'gate'), '');
  const exit = await restarted.exited;
  const lines = restarted.lines;
  const show = lines.filter((l) => !l.startsWith('progress')).join('\n');
  assert.equal(exit.code, 0, `${restarted.stderr}\n${show}`);
  const total = CLIENTS * PER_CLIENT;
  assert.ok(lines.includes(`number of transactions actually processed: ${total}/${total}`), show);
  assert.ok(lines.some((l) => /^number of failed transactions: 0 /.test(l)), show);
  assert.ok(!lines.some((l) => /^progress: .* [1-9]\d* failed/.test(l)), 'no failure reported in progress lines');
  assert.ok(lines.includes('pgbench exit 0'), show);
  assert.ok(lines.includes(`history ${total}`), 'one history row per transaction');
  const balances = lines.find((l) => l.startsWith('balances '))?.split(' ').slice(1);
  assert.ok(balances && balances.length === 4 && balances.every((b) => b === balances[0]), `pgbench's invariants: ${balances}`);
  assert.ok(lines.includes('server exit 0'), show);
  assert.ok(lines.includes('shutdown: shut down'), 'the server shut down cleanly');
});
