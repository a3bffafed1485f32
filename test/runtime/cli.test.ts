// The CLI: ckpt run / ps / kill as a user types them.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNoneLeft, ckpt, fixture, privateStateDir, results, uniqueMark } from '../helpers.js';
import { writeJob, jobsDir } from '../../dist/registry/jobs.js';

let stateDir = '';
before(() => {
  stateDir = privateStateDir();
});

test('ckpt run forwards output with [rank] prefixes and exits 0', async () => {
  const mark = uniqueMark();
  const r = await ckpt(['run', '-n', '4', '--', process.execPath, fixture('runtime/ring.mjs'), '2'], { MARK: mark });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(results(r.stdout).get(0), { counter: 8, path: [0, 1, 2, 3] });
  await assertNoneLeft('MARK', mark);
});

test('ckpt run without -- and with a shell command; stderr is prefixed too', async () => {
  const r = await ckpt(['run', '-n', '2', '--oob', 'tcp', 'sh', '-c', 'echo "out $CKPT_RANK/$CKPT_SIZE $CKPT_COORD"; echo err$CKPT_RANK >&2']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.trim().split('\n').sort();
  assert.match(out[0]!, /^\[0\] out 0\/2 tcp:127\.0\.0\.1:\d+$/);
  assert.match(out[1]!, /^\[1\] out 1\/2 tcp:127\.0\.0\.1:\d+$/);
  assert.deepEqual(r.stderr.trim().split('\n').sort(), ['[0] err0', '[1] err1']);
});

test('ckpt run --output DIR writes one file per rank and stream', async () => {
  const dir = join(stateDir, 'out');
  const r = await ckpt(['run', '-n', '3', '--output', dir, 'sh', '-c', 'echo hello $CKPT_RANK; echo oops $CKPT_RANK >&2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.deepEqual(readdirSync(dir).sort(), ['rank-0.err', 'rank-0.out', 'rank-1.err', 'rank-1.out', 'rank-2.err', 'rank-2.out']);
  for (let k = 0; k < 3; k++) {
    assert.equal(readFileSync(join(dir, `rank-${k}.out`), 'utf8'), `hello ${k}\n`);
    assert.equal(readFileSync(join(dir, `rank-${k}.err`), 'utf8'), `oops ${k}\n`);
  }
});

test('a failing rank: ckpt run reports it on one line and exits with its status', async () => {
  const mark = uniqueMark();
  const r = await ckpt(['run', '-n', '3', process.execPath, fixture('runtime/fail.mjs'), 'exit', '1'], { MARK: mark });
  assert.equal(r.code, 3);
  const errLines = r.stderr.trim().split('\n');
  assert.equal(errLines.length, 1, r.stderr);
  assert.match(errLines[0]!, /^ckpt: job [0-9a-f]{8} aborted: rank 1 exited with status 3 \[ECKPT_JOB_ABORTED\]$/);
  await assertNoneLeft('MARK', mark);
});

test('usage errors: -n 0, too many ranks, no -n, no command, unknown command', async () => {
  for (const [args, re, code] of [
    [['run', '-n', '0', 'true'], /-n takes 1 to 256 ranks, not 0/, 2],
    [['run', '-n', '257', 'true'], /-n takes 1 to 256 ranks, not 257/, 2],
    [['run', 'true'], /say how many ranks with -n N/, 2],
    [['run', '-n', '2'], /no command to run/, 2],
    [['run', '-n', '2', '--oob', 'udp', 'true'], /--oob is unix or tcp/, 2],
    [['run', '-n', '2', 'no-such-command-xyz'], /command not found: no-such-command-xyz .*ECKPT_COMMAND_NOT_FOUND/, 1],
    [['kill', 'nosuchjob'], /no running job 'nosuchjob'.*ECKPT_JOB_NOT_FOUND/, 1],
  ] as const) {
    const r = await ckpt([...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});

/** Starts `ckpt run` of wait.mjs and resolves once every rank is ready. */
function startWaitingJob(size: number, extra: string[], mark: string) {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  let child: any;
  const done = ckpt(['run', '-n', String(size), '--name', `job-${mark}`, ...extra, process.execPath, fixture('runtime/wait.mjs')], { MARK: mark }, {
    onStdout: (text, c) => {
      child = c;
      if ((text.match(/ready/g) ?? []).length === size) ready();
    },
  });
  return { done, isReady, child: () => child };
}

test('ckpt ps lists a running job; ckpt kill ends it; its entry is gone afterwards', async () => {
  const mark = uniqueMark();
  const run = startWaitingJob(3, [], mark);
  await run.isReady;
  const ps = await ckpt(['ps', '--json']);
  assert.equal(ps.code, 0, ps.stderr);
  const jobs = JSON.parse(ps.stdout).jobs;
  const job = jobs.find((j: any) => j.name === `job-${mark}`);
  assert.ok(job, ps.stdout);
  assert.equal(job.size, 3);
  assert.equal(job.state, 'running');
  assert.equal(job.pids.length, 3);
  assert.ok(job.pids.every((p: number) => p > 1));
  assert.equal(typeof job.uptimeMs, 'number');
  const text = await ckpt(['ps']);
  assert.match(text.stdout, new RegExp(`^ID +NAME +SIZE +STATE +UPTIME +PIDS\\n${job.id} +job-${mark} +3 +running`));

  const kill = await ckpt(['kill', `job-${mark}`]);
  assert.equal(kill.code, 0, kill.stderr);
  assert.match(kill.stdout, new RegExp(`ending job ${job.id}`));
  const r = await run.done;
  assert.equal(r.code, 143);
  assert.match(r.stderr, /killed by ckpt kill/);
  await assertNoneLeft('MARK', mark);
  const after = JSON.parse((await ckpt(['ps', '--json'])).stdout).jobs;
  assert.equal(after.find((j: any) => j.id === job.id), undefined);
});

test('ckpt kill --signal delivers a signal to every rank', async () => {
  const mark = uniqueMark();
  const run = startWaitingJob(2, ['--oob', 'tcp'], mark);
  await run.isReady;
  const kill = await ckpt(['kill', `job-${mark}`, '--signal', 'USR2']);
  assert.equal(kill.code, 0, kill.stderr);
  assert.match(kill.stdout, /sent SIGUSR2 to the 2 ranks/);
  const r = await run.done;
  assert.equal(r.code, 128 + 12);
  assert.match(r.stderr, /rank \d was killed by SIGUSR2/);
  await assertNoneLeft('MARK', mark);
});

test('Ctrl-C (SIGINT) on ckpt run ends the whole job', async () => {
  const mark = uniqueMark();
  const run = startWaitingJob(4, [], mark);
  await run.isReady;
  run.child().kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130);
  assert.match(r.stderr, /interrupted \(SIGINT\)/);
  await assertNoneLeft('MARK', mark);
});

test('ranks do not outlive a launcher killed with SIGKILL; ps then drops the entry', async () => {
  const mark = uniqueMark();
  const run = startWaitingJob(3, [], mark);
  await run.isReady;
  const jobs = JSON.parse((await ckpt(['ps', '--json'])).stdout).jobs;
  const job = jobs.find((j: any) => j.name === `job-${mark}`);
  run.child().kill('SIGKILL');
  await run.done;
  // Each rank sees its coordinator's connection close and exits.
  await assertNoneLeft('MARK', mark);
  const after = JSON.parse((await ckpt(['ps', '--json'])).stdout).jobs;
  assert.equal(after.find((j: any) => j.id === job.id), undefined);
  assert.ok(!existsSync(join(jobsDir(), `${job.id}.json`)));
});

test('ckpt ps removes the entries of jobs that died', async () => {
  writeJob({
    id: 'deadbeef',
    name: 'ghost',
    size: 1,
    oob: 'unix',
    address: 'unix:/nonexistent',
    secret: 's',
    pid: 999_999_999,
    pidStart: 1,
    command: ['x'],
    ranks: [{ rank: 0, pid: null }],
    state: 'running',
    startedAt: Date.now(),
  });
  assert.ok(existsSync(join(jobsDir(), 'deadbeef.json')));
  const ps = await ckpt(['ps', '--json']);
  assert.deepEqual(JSON.parse(ps.stdout).jobs.filter((j: any) => j.id === 'deadbeef'), []);
  assert.ok(!existsSync(join(jobsDir(), 'deadbeef.json')));
  assert.ok(jobsDir().startsWith(stateDir));
});

/** TCP listeners of these pids (`ss`): a job on unix sockets has none, unless a debugger port opened. */
function tcpListenersOf(pids: number[]): string[] {
  const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => pids.some((p) => l.includes(`pid=${p},`)));
}

test('a SIGUSR1 before the rank library ran: the debugger port Node opened lists no URL over HTTP, and init() closes it', async () => {
  // Port 0: the two ranks' ports do not clash; the user's NODE_OPTIONS are kept.
  const r = await ckpt(['run', '-n', '2', '--', process.execPath, fixture('runtime/usr1-at-start.mjs')], { NODE_OPTIONS: '--inspect-port=0' });
  assert.equal(r.code, 0, r.stderr);
  for (const rank of [0, 1]) {
    assert.deepEqual(results(r.stdout).get(rank), { listing: 404, nodeOptions: '--inspect-port=0 --inspect-publish-uid=stderr', openAfterInit: false, refused: true });
    assert.match(r.stderr, new RegExp(`ckpt: rank ${rank}: Node had opened its debugger port on a SIGUSR1 during its start-up: closed`));
  }
});

test('SIGUSR1 (what Slurm sends) to ckpt run and to its ranks opens no debugger port', async () => {
  const mark = uniqueMark();
  const run = startWaitingJob(2, [], mark);
  await run.isReady;
  const ps = JSON.parse((await ckpt(['ps', '--json'])).stdout).jobs.find((j: any) => j.name === `job-${mark}`);
  const pids: number[] = [run.child().pid, ...ps.pids];
  for (const pid of pids) process.kill(pid, 'SIGUSR1');
  // A checkpoint round through the coordinator and every rank: each has handled its signal by then.
  const store = mkdtempSync(join(tmpdir(), 'ckpt-usr1-'));
  try {
    const c = await ckpt(['checkpoint', `job-${mark}`, '--dir', store]);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(tcpListenersOf(pids), []);
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
  await ckpt(['kill', `job-${mark}`]);
  await run.done;
  await assertNoneLeft('MARK', mark);
});

