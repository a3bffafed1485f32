// Every `ckpt … --json` command, run for real through bin/ckpt: its success output
// conforms to docs/schemas/ckpt-<command>.schema.json, its failure to error.schema.json
// (with the one-line human error on stderr too, and a non-zero exit), and the
// manifest.json of real snapshots — self, criu, a rank job — to manifest.schema.json.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCriu } from '../../dist/criu/locate/find.js';
import { validateManifest } from '../../dist/store/manifest.js';
import { schemaFile } from '../../dist/cli/json.js';
import { JSON_COMMANDS } from '../../dist/cli/json-shapes.js';
import { ckpt, ckptProgram, fixture, isOneLineError, needCriu, Program, root, tempDir, type Result } from '../helpers.js';
import { SchemaSet } from '../helpers/json-schema.js';

const schemas = new SchemaSet(join(root, 'docs', 'schemas'));
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A successful --json run: exit 0, stdout one JSON document that its command's schema accepts. */
function success(r: Result, command: string): Json {
  assert.equal(r.code, 0, `ckpt ${command} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Json;
  const file = schemaFile(command as (typeof JSON_COMMANDS)[number]);
  assert.deepEqual(schemas.validate(file, out), [], `${file}: ${r.stdout}`);
  return out;
}

/** A failed --json run: non-zero exit, the error envelope on stdout, the same error as one line on stderr. */
function failure(r: Result, code: string): Json {
  assert.notEqual(r.code, 0, `expected a failure: ${r.stdout}`);
  assert.equal(r.signal, null);
  const out = JSON.parse(r.stdout) as Json;
  assert.deepEqual(schemas.validate('error.schema.json', out), [], r.stdout);
  assert.equal(out.error.code, code, r.stdout);
  assert.ok(isOneLineError(r.stderr), `one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.ok(r.stderr.trim().endsWith(`[${code}]`), r.stderr);
  assert.ok(r.stderr.includes(out.error.message.split('\n')[0]), `the same error on both: ${r.stderr}`);
  return out;
}

function manifestConforms(snapshotDir: string): Json {
  const m = JSON.parse(readFileSync(join(snapshotDir, 'manifest.json'), 'utf8')) as Json;
  validateManifest(m);
  assert.deepEqual(schemas.validate('manifest.schema.json', m), [], `manifest of ${snapshotDir}`);
  return m;
}

test('every --json command has a schema, and every schema uses only what the test validator checks', () => {
  const files = ['error.schema.json', 'manifest.schema.json', ...JSON_COMMANDS.map(schemaFile)];
  assert.deepEqual(files.slice().sort(), readdirSync(join(root, 'docs', 'schemas')).sort(), 'one schema per command, no other');
  for (const f of files) assert.notDeepEqual(schemas.validate(f, {}), [], `${f} refuses an empty object`);
});

test('the manifest schema refuses what validateManifest refuses', async (t) => {
  const good = JSON.parse(readFileSync(await selfSnapshot(t), 'utf8')) as Json;
  assert.deepEqual(schemas.validate('manifest.schema.json', good), []);
  const bad: [string, (m: Json) => void][] = [
    ['seq 0', (m) => (m.seq = 0)],
    ['an unknown endState', (m) => (m.endState = 'paused')],
    ['pid 1', (m) => (m.process.pid = 1)],
    ['two checksums', (m) => (m.files[0].sha256 = 'a'.repeat(64))],
    ['a path outside', (m) => (m.files[0].path = '../x')],
    ['a job kind without ranks', (m) => (m.kind = 'job')],
    ['crs as a string', (m) => (m.crs = 'self')],
  ];
  for (const [what, spoil] of bad) {
    const m = structuredClone(good);
    spoil(m);
    assert.throws(() => validateManifest(m), /manifest/, `validateManifest refuses ${what}`);
    assert.notDeepEqual(schemas.validate('manifest.schema.json', m), [], `the schema refuses ${what}`);
  }
});

/** A real self snapshot (the counter fixture checkpoints itself): its manifest's path. */
async function selfSnapshot(t: TestContext, store = join(tempDir(t), 'store')): Promise<string> {
  const original = new Program(process.execPath, [fixture('process/counter.mjs'), store, 'self']);
  t.after(() => original.kill());
  await original.waitFor(/^waiting$/);
  await original.kill();
  return join(store, '000001', 'manifest.json');
}

test('snapshots ls, inspect, verify, rm, gc and restart of a self snapshot', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  await selfSnapshot(t, store);
  const snap = join(store, '000001');
  const m = manifestConforms(snap);
  assert.equal(m.crs.name, 'self');

  const ls = success(await ckpt(['snapshots', 'ls', store, '--json']), 'snapshots ls');
  assert.deepEqual(ls.snapshots[0].crs, m.crs, 'crs is { name, version } in ls as in the manifest');
  const inspect = success(await ckpt(['snapshots', 'inspect', store, '--json']), 'snapshots inspect');
  assert.equal(inspect.snapshot, snap);
  const verify = success(await ckpt(['snapshots', 'verify', store, '--json']), 'snapshots verify');
  assert.equal(verify.bytes, ls.snapshots[0].bytes);

  // restart --detach: only the JSON on stdout (the program's output goes to its log).
  const restart = success(await ckpt(['restart', store, '--detach', '--log', join(dir, 'log'), '--json']), 'restart');
  assert.deepEqual([restart.kind, restart.detached, restart.crs], ['process', true, m.crs]);

  // A stale partial snapshot (its writer is gone) for gc.
  const dead = spawnSync('true').pid;
  const partial = join(store, `.partial-000009-abc-${dead}@${hostname()}`);
  mkdirSync(partial, { mode: 0o700 });
  writeFileSync(join(partial, 'x'), 'x'.repeat(100));
  const gc = success(await ckpt(['snapshots', 'gc', store, '--json']), 'snapshots gc');
  assert.deepEqual(gc.removed, [{ path: partial, bytes: 100 }]);
  assert.equal(gc.bytes, 100);

  failure(await ckpt(['snapshots', 'ls', join(dir, 'nothing'), '--json']), 'ECKPT_SNAPSHOT_MISSING');
  failure(await ckpt(['snapshots', 'inspect', join(dir, 'nothing'), '--json']), 'ECKPT_SNAPSHOT_MISSING');
  failure(await ckpt(['snapshots', 'gc', join(dir, 'nothing'), '--json']), 'ECKPT_SNAPSHOT_MISSING');
  failure(await ckpt(['snapshots', 'rm', store, '--json']), 'ECKPT_USAGE');
  failure(await ckpt(['restart', join(dir, 'nothing'), '--json']), 'ECKPT_SNAPSHOT_MISSING');

  // A damaged snapshot: verify fails, every problem in the error's details.
  const file = (m.files as { path: string }[])[0]!.path;
  writeFileSync(join(snap, file), 'damaged');
  const bad = failure(await ckpt(['snapshots', 'verify', store, '--json']), 'ECKPT_SNAPSHOT_CORRUPT');
  assert.ok(bad.error.details.problems.some((p: string) => p.startsWith(`${file}:`)), bad.error.details.problems);

  const rm = success(await ckpt(['snapshots', 'rm', store, '--seq', '1', '--json']), 'snapshots rm');
  assert.deepEqual([rm.snapshot, rm.seq, rm.lockTable], [snap, 1, null]);
});

test('checkpoint --pid and resume of a process, by criu', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  const program = new Program(fixture('process/ticker.sh'), ['100000'], {}, { session: true });
  t.after(() => program.kill());
  await program.waitFor(/^tick 3$/);
  const cp = success(await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--stop', '--json']), 'checkpoint');
  assert.deepEqual([cp.kind, cp.pid, cp.endState, cp.crs.name], ['process', program.pid, 'stop', 'criu']);
  const m = manifestConforms(cp.snapshot);
  assert.deepEqual(cp.crs, m.crs);
  const resumed = success(await ckpt(['resume', String(program.pid), '--json']), 'resume');
  assert.ok(resumed.pids.includes(program.pid));

  failure(await ckpt(['checkpoint', '--pid', String(program.pid), '--json']), 'ECKPT_USAGE');
  failure(await ckpt(['resume', 'no-such-job', '--json']), 'ECKPT_USAGE');
});

test('ps, checkpoint and kill of a rank job', async (t) => {
  const dir = tempDir(t);
  const env = { CKPT_STATE_DIR: join(dir, 'state') };
  const store = join(dir, 'store');
  const name = `json-${process.pid}`;
  const run = ckptProgram(['run', '-n', '2', '--crs', 'self', '--name', name, '--dir', store, '--', process.execPath, fixture('jobs/ticker.mjs')], env);
  t.after(() => run.kill('SIGTERM'));
  for (let r = 0; r < 2; r++) await run.waitFor(new RegExp(`^\\[${r}\\] ready ${r} \\d+$`));

  const ps = success(await ckpt(['ps', '--json'], env), 'ps');
  const listed = (ps.jobs as Json[]).find((j) => j.name === name)!;
  assert.equal(listed.size, 2);
  assert.ok(listed.pids.every((p: unknown) => typeof p === 'number'));

  const cp = success(await ckpt(['checkpoint', name, '--json'], env), 'checkpoint');
  assert.deepEqual([cp.kind, cp.name, cp.size, cp.crs.name], ['ranks', name, 2, 'self']);
  // The coordinator's own timing of each phase, and of the commit's wait on the disk.
  assert.deepEqual(Object.keys(cp.phasesMs), ['begin', 'prepare', 'reach', 'save', 'commit', 'resume']);
  assert.ok(cp.syncMs >= 0 && cp.syncMs <= cp.phasesMs.commit, JSON.stringify(cp));
  const m = manifestConforms(cp.snapshot);
  assert.deepEqual(cp.crs, m.crs);
  assert.equal(cp.bytes, (m.files as { size: number }[]).reduce((n, f) => n + f.size, 0));

  const kill = success(await ckpt(['kill', name, '--json'], env), 'kill');
  assert.deepEqual([kill.job, kill.name, kill.signal], [listed.id, name, null]);
  await run.exited;

  failure(await ckpt(['ps', '--all', '--json'], env), 'ECKPT_USAGE');
  failure(await ckpt(['kill', name, '--json'], env), 'ECKPT_JOB_NOT_FOUND');
  failure(await ckpt(['checkpoint', name, '--json'], env), 'ECKPT_JOB_NOT_FOUND');
});

test('checkpoint --stop, resume and kill of an isolated job', async (t) => {
  if (!(await needCriu(t))) return;
  if (process.geteuid?.() !== 0) return void t.skip('ckpt run --isolate needs root');
  // Its working directory must be visible inside the job: not under /tmp.
  const cwd = mkdtempSync('/var/tmp/ckpt-json-test-');
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state') };
  const name = `json-iso-${process.pid}`;
  const loop = 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done';
  const job = ckptProgram(['run', '--isolate', '--name', name, '--', '/bin/sh', '-c', loop], env, cwd);
  t.after(() => job.kill());
  await job.waitFor(/^tick 3$/);
  const cp = success(await ckpt(['checkpoint', name, '--dir', join(cwd, 'store'), '--stop', '--json'], env), 'checkpoint');
  assert.deepEqual([cp.kind, cp.name, cp.endState, cp.crs.name], ['isolated', name, 'stop', 'criu']);
  manifestConforms(cp.snapshot);
  success(await ckpt(['resume', name, '--json'], env), 'resume');
  const kill = success(await ckpt(['kill', name, '--json'], env), 'kill');
  assert.equal(kill.name, name);
  await job.exited;
});

test('doctor and setup', async (t) => {
  success(await ckpt(['doctor', '--json']), 'doctor');
  failure(await ckpt(['doctor', '--verbose', '--json']), 'ECKPT_USAGE');
  failure(await ckpt(['setup', 'gcc', '--json']), 'ECKPT_USAGE');
  failure(await ckpt(['setup', 'criu', '--json'], { CKPT_CRIU: '/nonexistent' }), 'ECKPT_CRIU_NOT_FOUND');
  if (!(await needCriu(t))) return;
  // A CRIU named by CKPT_CRIU is only checked, not installed.
  const criu = await findCriu();
  const setup = success(await ckpt(['setup', 'criu', '--json'], { CKPT_CRIU: criu.path }), 'setup');
  assert.equal(setup.action, 'using-env');
});

test('an unknown command or option with --json fails in the envelope too', async () => {
  failure(await ckpt(['frobnicate', '--json']), 'ECKPT_USAGE');
  failure(await ckpt(['snapshots', 'ls', '--json']), 'ECKPT_USAGE');
});
