// The snapshot store on its own: numbering, atomic commit, private modes,
// verification, manifest validation, removal, and `ckpt snapshots`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  abortSnapshot,
  assertIntact,
  beginSnapshot,
  beginVerification,
  commitSnapshot,
  listSnapshots,
  openSnapshot,
  removeSnapshot,
  verifySnapshot,
} from '../../dist/store/store.js';
import { MANIFEST_NAME, validateManifest } from '../../dist/store/manifest.js';
import { keepNewest } from '../../dist/store/retention.js';
import { hashBytes } from '../../dist/store/checksum.js';
import { ckpt, isOneLineError, tempDir } from '../helpers.js';
import { manifestDraft } from '../helpers/snapshots.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const draft = (pid = 4242): Json => manifestDraft({}, { pid, argv: ['/bin/true', `--id=${pid}`] });

/** A committed snapshot with two files (one in a subdirectory). */
async function make(store: string, pid = 4242, content = 'hello') {
  const pending = beginSnapshot(store);
  writeFileSync(join(pending.dir, 'state.bin'), content);
  mkdirSync(join(pending.dir, 'images'));
  writeFileSync(join(pending.dir, 'images', 'pages.img'), Buffer.alloc(10_000, 7));
  return commitSnapshot(pending, draft(pid));
}

const mode = (p: string) => statSync(p).mode & 0o777;

test('sequence numbers go up, a snapshot is opened by store (newest), --seq or directory', async (t) => {
  const store = join(tempDir(t), 'store');
  const a = await make(store, 101);
  const b = await make(store, 102);
  const c = await make(store, 103);
  assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 3]);
  assert.deepEqual(readdirSync(store).sort(), ['000001', '000002', '000003']);
  assert.equal(openSnapshot(store).seq, 3);
  assert.equal((openSnapshot(store, { seq: 2 }).manifest as Json).process.pid, 102);
  assert.equal((openSnapshot(join(store, '000001')).manifest as Json).process.pid, 101);
  assert.equal(openSnapshot(join(store, '000001'), { seq: 1 }).seq, 1);
  assert.throws(() => openSnapshot(join(store, '000001'), { seq: 2 }), { code: 'ECKPT_SNAPSHOT_MISSING' });
  assert.throws(() => openSnapshot(store, { seq: 9 }), { code: 'ECKPT_SNAPSHOT_MISSING' });
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1, 2, 3]);
  // A removed snapshot's number is not reused while a newer one exists.
  removeSnapshot(openSnapshot(store, { seq: 2 }));
  assert.equal((await make(store, 104)).seq, 4);
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1, 3, 4]);
});

test('commit is atomic: a partial snapshot is never listed or opened, and its number is not reused', async (t) => {
  const store = join(tempDir(t), 'store');
  await make(store);
  const pending = beginSnapshot(store);
  assert.equal(pending.seq, 2);
  assert.match(pending.path, /\/\.partial-000002-[0-9a-f]+-\d+@[^/]+$/);
  writeFileSync(join(pending.dir, 'state.bin'), 'half');
  // Even with a manifest written (a crash just before the rename), it is not a snapshot.
  writeFileSync(join(pending.dir, MANIFEST_NAME), JSON.stringify({ ...draft(), seq: 2, committedAt: 'x', files: [] }));
  assert.deepEqual(listSnapshots(store).map((s) => s.seq), [1]);
  assert.equal(openSnapshot(store).seq, 1);
  assert.throws(() => openSnapshot(store, { seq: 2 }), { code: 'ECKPT_SNAPSHOT_MISSING', message: /never committed/ });
  assert.throws(() => openSnapshot(pending.path), { code: 'ECKPT_SNAPSHOT_INCOMPLETE' });
  assert.throws(() => listSnapshots(pending.path), { code: 'ECKPT_SNAPSHOT_INCOMPLETE' });
  // The next snapshot skips the number the partial one holds.
  assert.equal((await make(store)).seq, 3);
  abortSnapshot(pending);
  assert.ok(!existsSync(pending.path));
  assert.deepEqual(readdirSync(store).sort(), ['000001', '000003']);
});

test('a store with only partial snapshots, or none, has nothing to open', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const pending = beginSnapshot(store);
  assert.throws(() => openSnapshot(store), { code: 'ECKPT_SNAPSHOT_INCOMPLETE', message: /only incomplete/ });
  assert.deepEqual(listSnapshots(store), []);
  abortSnapshot(pending);
  assert.ok(!existsSync(store), 'an aborted first snapshot removes the store it created');
  mkdirSync(store);
  assert.throws(() => openSnapshot(store), { code: 'ECKPT_SNAPSHOT_INCOMPLETE', message: /holds no snapshot/ });
  assert.throws(() => openSnapshot(join(dir, 'nope')), { code: 'ECKPT_SNAPSHOT_MISSING' });
  assert.throws(() => listSnapshots(join(dir, 'nope')), { code: 'ECKPT_SNAPSHOT_MISSING' });
  writeFileSync(join(dir, 'file'), 'x');
  assert.throws(() => openSnapshot(join(dir, 'file')), { code: 'ECKPT_SNAPSHOT_MISSING' });
  assert.throws(() => beginSnapshot(join(dir, 'file')), { code: 'ECKPT_SNAPSHOT_PATH' });
  const snap = await make(join(dir, 'other'));
  assert.throws(() => beginSnapshot(snap.dir), { code: 'ECKPT_SNAPSHOT_PATH' }, 'a snapshot is not a store');
});

test('directories are 0700 and files 0600; an existing store keeps its mode', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'a', 'store');
  const snap = await make(store);
  assert.equal(mode(store), 0o700);
  assert.equal(mode(snap.dir), 0o700);
  assert.equal(mode(join(snap.dir, 'images')), 0o700);
  for (const f of [MANIFEST_NAME, 'state.bin', 'images/pages.img']) assert.equal(mode(join(snap.dir, f)), 0o600, f);
  // A directory the user already has (say, a shared one) is not chmodded.
  const shared = join(dir, 'shared');
  mkdirSync(shared, { mode: 0o755 });
  const s2 = await make(shared);
  assert.equal(mode(shared), 0o755);
  assert.equal(mode(s2.dir), 0o700);
  assert.equal(mode(join(s2.dir, 'state.bin')), 0o600);
});

test('the manifest lists every file with size and checksum; verify detects missing, truncated, modified', async (t) => {
  const store = join(tempDir(t), 'store');
  const snap = await make(store);
  const paths = snap.manifest.files.map((f: Json) => f.path).sort();
  assert.deepEqual(paths, ['images/pages.img', 'state.bin']);
  assert.equal(snap.manifest.files.find((f: Json) => f.path === 'state.bin')!.size, 5);
  const onDisk = validateManifest(JSON.parse(readFileSync(join(snap.dir, MANIFEST_NAME), 'utf8')));
  assert.deepEqual(onDisk, snap.manifest);

  assert.deepEqual(await verifySnapshot(openSnapshot(store)), { ok: true, files: 2, bytes: 10_005, problems: [] });
  await assertIntact(openSnapshot(store));

  writeFileSync(join(snap.dir, 'state.bin'), 'hellO'); // same size, one byte changed
  truncateSync(join(snap.dir, 'images', 'pages.img'), 9_999);
  let result = await verifySnapshot(openSnapshot(store));
  assert.equal(result.ok, false);
  assert.deepEqual(result.problems.sort(), ['images/pages.img: size 9999, expected 10000', 'state.bin: checksum mismatch']);
  await assert.rejects(assertIntact(openSnapshot(store)), { code: 'ECKPT_SNAPSHOT_CORRUPT', message: /images\/pages\.img: size 9999.*\(and 1 more\)/ });

  renameSync(join(snap.dir, 'state.bin'), join(snap.dir, 'moved.bin'));
  result = await verifySnapshot(openSnapshot(store));
  assert.ok(result.problems.includes('state.bin: missing'), result.problems.join('; '));
  mkdirSync(join(snap.dir, 'state.bin'));
  result = await verifySnapshot(openSnapshot(store));
  assert.ok(result.problems.includes('state.bin: not a regular file'), result.problems.join('; '));
});

test('a verification beside a restore: the layout at once (throws), the checksums after (done rejects, failure() says)', async (t) => {
  const store = join(tempDir(t), 'store');
  const snap = await make(store);
  const good = beginVerification(openSnapshot(store));
  await good.done;
  assert.equal(await good.failure(), undefined);

  // Same size, one byte changed: only the contents tell, after the verification began.
  writeFileSync(join(snap.dir, 'state.bin'), 'hellO');
  const bad = beginVerification(openSnapshot(store));
  await assert.rejects(bad.done, { code: 'ECKPT_SNAPSHOT_CORRUPT', message: /state\.bin: checksum mismatch/ });
  const err = await bad.failure();
  assert.equal(err?.code, 'ECKPT_SNAPSHOT_CORRUPT');
  // Only the files kept are checked: the damaged one left out, the rest verifies.
  await beginVerification(openSnapshot(store), (path) => path.startsWith('images/')).done;

  // A truncated file: refused before any restore could begin.
  truncateSync(join(snap.dir, 'images', 'pages.img'), 9_999);
  assert.throws(() => beginVerification(openSnapshot(store)), { code: 'ECKPT_SNAPSHOT_CORRUPT', message: /images\/pages\.img: size 9999, expected 10000/ });
});

test('validateManifest rejects each malformed field', async (t) => {
  const snap = await make(join(tempDir(t), 'store'));
  const good: Json = JSON.parse(readFileSync(join(snap.dir, MANIFEST_NAME), 'utf8'));
  const copy = (): Json => structuredClone(good);
  assert.deepEqual(validateManifest(copy()), good);

  const FORMAT = 'ECKPT_SNAPSHOT_FORMAT';
  const PATH = 'ECKPT_SNAPSHOT_PATH';
  const cases: [string, (m: Json) => unknown, string][] = [
    ['not an object', () => [], FORMAT],
    ['null', () => null, FORMAT],
    ['format', (m) => (m.format = 'other'), FORMAT],
    ['version 2', (m) => (m.version = 2), FORMAT],
    ['version "1"', (m) => (m.version = '1'), FORMAT],
    ['version missing', (m) => delete m.version, FORMAT],
    ['kind', (m) => (m.kind = 'thing'), FORMAT],
    ['seq 0', (m) => (m.seq = 0), FORMAT],
    ['seq 1.5', (m) => (m.seq = 1.5), FORMAT],
    ['seq string', (m) => (m.seq = '1'), FORMAT],
    ['createdAt', (m) => (m.createdAt = 5), FORMAT],
    ['committedAt', (m) => delete m.committedAt, FORMAT],
    ['ckptVersion', (m) => (m.ckptVersion = null), FORMAT],
    ['host', (m) => (m.host = []), FORMAT],
    ['crs', (m) => (m.crs = 'criu'), FORMAT],
    ['crs.name', (m) => delete m.crs.name, FORMAT],
    ['crs.version', (m) => (m.crs.version = 4), FORMAT],
    ['endState', (m) => (m.endState = 'paused'), FORMAT],
    ['origin', (m) => (m.origin = 'elsewhere'), FORMAT],
    ['process', (m) => (m.process = null), FORMAT],
    ['process.pid 1', (m) => (m.process.pid = 1), FORMAT],
    ['process.pid -1', (m) => (m.process.pid = -1), FORMAT],
    ['process.pid string', (m) => (m.process.pid = '4242'), FORMAT],
    ['process.tree with 0', (m) => (m.process.tree = [4242, 0]), FORMAT],
    ['process.tree with 1', (m) => (m.process.tree = [1]), FORMAT],
    ['process.tree not a list', (m) => (m.process.tree = 4242), FORMAT],
    ['process.argv empty', (m) => (m.process.argv = []), FORMAT],
    ['process.argv number', (m) => (m.process.argv = ['x', 1]), FORMAT],
    ['process.cwd', (m) => delete m.process.cwd, FORMAT],
    ['process.env', (m) => (m.process.env = { A: 1 }), FORMAT],
    ['process.stdio', (m) => (m.process.stdio = [0]), FORMAT],
    ['process.uid', (m) => (m.process.uid = 'root'), FORMAT],
    ['data', (m) => (m.data = 'x'), FORMAT],
    ['files', (m) => (m.files = {}), FORMAT],
    ['files entry', (m) => (m.files[0] = 'state.bin'), FORMAT],
    ['files size', (m) => (m.files[0].size = -1), FORMAT],
    ['files size string', (m) => (m.files[0].size = '5'), FORMAT],
    ['files checksum', (m) => {
      for (const k of ['sha256', 'xxh64']) if (k in m.files[0]) m.files[0][k] = 'zz';
    }, FORMAT],
    ['files no checksum', (m) => {
      delete m.files[0].sha256;
      delete m.files[0].xxh64;
    }, FORMAT],
    ['duplicate file', (m) => m.files.push(structuredClone(m.files[0])), FORMAT],
    ['path ../../etc/passwd', (m) => (m.files[0].path = '../../etc/passwd'), PATH],
    ['path /etc/passwd', (m) => (m.files[0].path = '/etc/passwd'), PATH],
    ['path a/../../b', (m) => (m.files[0].path = 'images/../../b'), PATH],
    ['path ./x', (m) => (m.files[0].path = './state.bin'), PATH],
    ['path empty', (m) => (m.files[0].path = ''), PATH],
    ['path a//b', (m) => (m.files[0].path = 'images//pages.img'), PATH],
    ['path backslash', (m) => (m.files[0].path = '..\\x'), PATH],
    ['path NUL', (m) => (m.files[0].path = 'state.bin\0'), PATH],
    ['path manifest.json', (m) => (m.files[0].path = MANIFEST_NAME), PATH],
  ];
  for (const [what, edit, code] of cases) {
    const m = copy();
    const replaced = edit(m);
    const value = what === 'not an object' || what === 'null' ? replaced : m;
    assert.throws(() => validateManifest(value), { code }, what);
  }
});

test("validateManifest checks a job's packed ranks: slices inside a pack file the manifest lists", () => {
  const job: Json = {
    ...draft(),
    kind: 'job',
    origin: 'coordinated',
    seq: 1,
    committedAt: new Date().toISOString(),
    job: { id: 'j1', name: 'j', size: 2, oob: 'unix', argv: ['node', 'x.js'], cwd: '/', env: {} },
    ranks: [
      { rank: 0, pid: 10, dir: 'rank-0', safePoint: 3, packed: { file: 'ranks.pack', state: [0, 40], binary: false, library: [40, 60] } },
      { rank: 1, pid: 11, dir: 'rank-1', safePoint: 3 },
    ],
    files: [
      { path: 'ranks.pack', size: 100, xxh64: '0123456789abcdef' },
      { path: 'rank-1/state.json', size: 5, xxh64: '0123456789abcdef' },
    ],
  };
  delete job.process;
  assert.equal(validateManifest(structuredClone(job)).kind, 'job');
  const FORMAT = 'ECKPT_SNAPSHOT_FORMAT';
  const cases: [string, (m: Json) => unknown, string][] = [
    ['slice past the end', (m) => (m.ranks[0].packed.library = [40, 61]), FORMAT],
    ['negative offset', (m) => (m.ranks[0].packed.state = [-1, 40]), FORMAT],
    ['slice not a pair', (m) => (m.ranks[0].packed.state = [0]), FORMAT],
    ['binary not boolean', (m) => (m.ranks[0].packed.binary = 'no'), FORMAT],
    ['pack not among the files', (m) => (m.ranks[0].packed.file = 'other.pack'), FORMAT],
    ['pack path escapes', (m) => (m.ranks[0].packed.file = '../ranks.pack'), 'ECKPT_SNAPSHOT_PATH'],
    ['packed not an object', (m) => (m.ranks[0].packed = 'ranks.pack'), FORMAT],
  ];
  for (const [what, edit, code] of cases) {
    const m = structuredClone(job);
    edit(m);
    assert.throws(() => validateManifest(m), { code }, what);
  }
});

test('ckpt snapshots ls / inspect / verify / rm, as text and --json', async (t) => {
  const store = join(tempDir(t), 'store');
  await make(store, 201);
  const second = await make(store, 202);

  const ls = await ckpt(['snapshots', 'ls', store]);
  assert.equal(ls.code, 0, ls.stderr);
  const rows = ls.stdout.trim().split('\n');
  assert.equal(rows.length, 2);
  assert.match(rows[0]!, /^\s*1\s.*none/);
  assert.match(rows[1]!, /^\s*2\s.*\/bin\/true --id=202/);
  const lsj = JSON.parse((await ckpt(['snapshots', 'ls', store, '--json'])).stdout);
  assert.equal(lsj.ok, true);
  assert.deepEqual(lsj.snapshots.map((s: Json) => [s.seq, s.crs.name, s.bytes]), [[1, 'none', 10_005], [2, 'none', 10_005]]);

  const inspect = await ckpt(['snapshots', 'inspect', store, '--seq', '1']);
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.match(inspect.stdout, /seq 1/);
  assert.match(inspect.stdout, /\/bin\/true --id=201/);
  const ij = JSON.parse((await ckpt(['snapshots', 'inspect', store, '--json'])).stdout);
  assert.equal(ij.ok, true);
  assert.equal(ij.manifest.seq, 2);
  assert.equal(ij.manifest.process.pid, 202);
  assert.equal(ij.snapshot, second.dir);

  const verify = await ckpt(['snapshots', 'verify', store]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /000002: ok \(2 files/);
  const vj = JSON.parse((await ckpt(['snapshots', 'verify', store, '--seq', '1', '--json'])).stdout);
  assert.deepEqual([vj.ok, vj.files, vj.bytes, vj.problems], [true, 2, 10_005, []]);

  // Damage seq 1: verify fails naming the file.
  writeFileSync(join(store, '000001', 'state.bin'), 'HELLO');
  const bad = await ckpt(['snapshots', 'verify', store, '--seq', '1']);
  assert.notEqual(bad.code, 0);
  assert.ok(isOneLineError(bad.stderr), bad.stderr);
  assert.match(bad.stderr, /state\.bin: checksum mismatch.*\[ECKPT_SNAPSHOT_CORRUPT\]$/m);
  const badj = await ckpt(['snapshots', 'verify', join(store, '000001'), '--json']);
  assert.notEqual(badj.code, 0);
  assert.equal(JSON.parse(badj.stdout).error.code, 'ECKPT_SNAPSHOT_CORRUPT');

  // rm needs the snapshot named exactly: a bare store is refused.
  const vague = await ckpt(['snapshots', 'rm', store]);
  assert.notEqual(vague.code, 0);
  assert.ok(isOneLineError(vague.stderr), vague.stderr);
  assert.match(vague.stderr, /\[ECKPT_USAGE\]$/m);
  assert.deepEqual(readdirSync(store).sort(), ['000001', '000002']);
  const rm = await ckpt(['snapshots', 'rm', store, '--seq', '1']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /removed .*000001/);
  const rmj = JSON.parse((await ckpt(['snapshots', 'rm', join(store, '000002'), '--json'])).stdout);
  assert.deepEqual(rmj, { ok: true, snapshot: join(store, '000002'), seq: 2, lockTable: null });
  assert.deepEqual(readdirSync(store), []);
  const empty = await ckpt(['snapshots', 'ls', store]);
  assert.equal(empty.code, 0);
  assert.match(empty.stdout, /no committed snapshots/);
  const gone = await ckpt(['snapshots', 'inspect', store, '--json']);
  assert.notEqual(gone.code, 0);
  assert.equal(JSON.parse(gone.stdout).error.code, 'ECKPT_SNAPSHOT_INCOMPLETE');
});

test('ls shows an unreadable snapshot as such instead of failing', async (t) => {
  const store = join(tempDir(t), 'store');
  await make(store);
  await make(store);
  writeFileSync(join(store, '000001', MANIFEST_NAME), '{ broken');
  const ls = JSON.parse((await ckpt(['snapshots', 'ls', store, '--json'])).stdout);
  assert.equal(ls.snapshots.length, 2);
  assert.match(ls.snapshots[0].error, /not valid JSON/);
  assert.equal(ls.snapshots[1].error, undefined);
  const text = await ckpt(['snapshots', 'ls', store]);
  assert.match(text.stdout, /^\s+1\s+unreadable: /m);
});

test('a directory its writer listed and reported whole (a criu rank\'s images) is taken from the report, the rest still listed and hashed', async (t) => {
  const store = join(tempDir(t), 'store');
  const pending = beginSnapshot(store);
  mkdirSync(join(pending.dir, 'rank-0', 'images'), { recursive: true, mode: 0o700 });
  const synced: { path: string; size: number; xxh64: string }[] = [];
  for (const name of ['core-1.img', 'pages-1.img']) {
    writeFileSync(join(pending.dir, 'rank-0', 'images', name), name);
    synced.push({ path: `rank-0/images/${name}`, size: name.length, xxh64: await hashBytes(Buffer.from(name)) });
  }
  // Not reported, outside the complete directory: listed, synced and hashed by the commit.
  writeFileSync(join(pending.dir, 'rank-0', 'extra'), 'extra');
  const snapshot = await commitSnapshot(pending, manifestDraft(), { synced, syncedDirs: ['rank-0', 'rank-0/images'], completeDirs: ['rank-0/images'] });
  assert.deepEqual(snapshot.manifest.files.map((f: { path: string }) => f.path).sort(), ['rank-0/extra', 'rank-0/images/core-1.img', 'rank-0/images/pages-1.img']);
  assert.deepEqual(await verifySnapshot(openSnapshot(store)), { ok: true, files: 3, bytes: 5 + 10 + 11, problems: [] });
});

test("a numbered directory whose manifest names another sequence is refused; rm and retention remove the directory they opened, never another", async (t) => {
  const store = join(tempDir(t), 'store');
  for (let i = 0; i < 3; i++) await make(store);
  const setSeq = (name: string, seq: number) => {
    const path = join(store, name, MANIFEST_NAME);
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), seq }));
  };
  // A copy under a name of its own: rm removes that copy, not the sequence it holds.
  cpSync(join(store, '000001'), join(store, 'keep-copy'), { recursive: true });
  const rm = await ckpt(['snapshots', 'rm', join(store, 'keep-copy')]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.deepEqual(readdirSync(store).sort(), ['000001', '000002', '000003']);
  // 000003 says it is 2: refused wherever it is named, and 2 is left alone.
  setSeq('000003', 2);
  for (const args of [['snapshots', 'rm', store, '--seq', '3'], ['snapshots', 'inspect', join(store, '000003')]]) {
    const r = await ckpt(args);
    assert.ok(isOneLineError(r.stderr) && r.stderr.trim().endsWith('[ECKPT_SNAPSHOT_FORMAT]'), r.stderr);
  }
  // 000001 says it is 3: retention keeping one skips what it cannot trust and never removes 000003.
  setSeq('000003', 3);
  setSeq('000001', 3);
  assert.deepEqual(keepNewest(store, 1, () => true), [2]);
  assert.deepEqual(readdirSync(store).sort(), ['000001', '000003']);
});

test('a command line, working directory or environment with a NUL (no exec can carry one) is an invalid manifest', async (t) => {
  const snap = await make(join(tempDir(t), 'store'));
  const ok: Json = JSON.parse(readFileSync(join(snap.dir, MANIFEST_NAME), 'utf8'));
  validateManifest(structuredClone(ok));
  for (const [field, edit] of [
    ['process.argv', (m: Json) => (m.process.argv = ['/bin/true', 'a\0b'])],
    ['process.cwd', (m: Json) => (m.process.cwd = '/tmp\0x')],
    ['process.env', (m: Json) => (m.process.env = { A: 'x\0y' })],
    ['process.env', (m: Json) => (m.process.env = { 'A=B': 'x' })],
  ] as const) {
    const m = structuredClone(ok);
    edit(m);
    assert.throws(() => validateManifest(m), { code: 'ECKPT_SNAPSHOT_FORMAT', message: new RegExp(field.replace('.', '\\.')) });
  }
});
