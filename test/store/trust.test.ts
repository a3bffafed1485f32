// Trust boundaries (docs/SECURITY.md): a snapshot or store another user controls never
// makes root run their code or write where they point; malformed snapshots get a coded
// error at once. Run as root, with a created non-root user (`ckpt-test`) as the other side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { beginSnapshot, commitSnapshot, openSnapshot } from '../../dist/store/store.js';
import { MANIFEST_NAME } from '../../dist/store/manifest.js';
import { ckpt, isOneLineError, needRoot, Program, type Result, runAsUser, tempDir, testUser, userDir, userInstall } from '../helpers.js';
import { draft, giveTo, snapshotIn } from '../helpers/snapshots.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function assertCoded(r: Result, code: string): void {
  assert.notEqual(r.code, 0, `non-zero exit; stdout ${r.stdout} stderr ${r.stderr}`);
  assert.equal(r.signal, null, 'ended by itself');
  assert.ok(isOneLineError(r.stderr), `one-line error: ${JSON.stringify(r.stderr)}`);
  assert.ok(r.stderr.trim().endsWith(`[${code}]`), `code ${code} in: ${r.stderr}`);
}

/** Rewrites the manifest of a store's newest snapshot (as its owner could). */
function editManifest(store: string, edit: (m: Json) => void): void {
  const seq = readdirSync(store).find((n) => /^\d{6}$/.test(n))!;
  const path = join(store, seq, MANIFEST_NAME);
  const m = JSON.parse(readFileSync(path, 'utf8')) as Json;
  edit(m);
  writeFileSync(path, JSON.stringify(m));
}

test("root never runs a user's tampered self snapshot as root: refused, or run as that user with --trust-owner", async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const home = userDir(t, user);
  const marker = join(home, 'ran-as');
  const store = await snapshotIn(home, draft(['/bin/sh', '-c', `id -u > ${marker}`], home));
  // The user edits the command line of their own snapshot: what root must not run as root.
  editManifest(store, (m) => (m.process.argv = ['/bin/sh', '-c', `id -u > ${marker}; id -G >> ${marker}`]));
  giveTo(store, user);
  for (const ref of [store, join(store, '000001')]) assertCoded(await ckpt(['restart', ref]), 'ECKPT_SNAPSHOT_OWNER');
  assert.ok(!existsSync(marker), 'nothing ran');
  // Trusted explicitly: it runs, as the user who wrote it.
  const r = await ckpt(['restart', store, '--trust-owner']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readFileSync(marker, 'utf8').trim().split('\n'), [String(user.uid), String(user.gid)], 'its uid, its group, no other');
  assert.equal(statSync(marker).uid, user.uid);
});

test("a user's job snapshot or CRIU images are never restarted by root, even with --trust-owner", async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const home = userDir(t, user);
  const marker = join(home, 'ran');
  const job: Json = {
    ...draft(['/bin/sh', '-c', `touch ${marker}`], home),
    kind: 'job',
    origin: 'coordinated',
    crs: { name: 'self', version: 'test' },
    job: { id: 'j1', name: 'evil', size: 1, oob: 'unix', argv: ['/bin/sh', '-c', `touch ${marker}`], cwd: home, env: {} },
    ranks: [{ rank: 0, pid: 4242, dir: 'rank-0' }],
  };
  delete job.process;
  const jobStore = await snapshotIn(home, job, { 'rank-0/library.json': '{}' });
  const criuStore = await snapshotIn(home, draft(['/bin/true'], home, 'criu'), { 'images/inventory.img': 'x' });
  giveTo(jobStore, user);
  giveTo(criuStore, user);
  for (const store of [jobStore, criuStore]) {
    assertCoded(await ckpt(['restart', store]), 'ECKPT_SNAPSHOT_OWNER');
    const r = await ckpt(['restart', store, '--trust-owner']);
    assertCoded(r, 'ECKPT_SNAPSHOT_OWNER');
    assert.match(r.stderr, /root does not restart another user's/);
  }
  assert.ok(!existsSync(marker), 'nothing ran');
});

test('links and loose modes inside a snapshot are refused, whoever owns it', async (t) => {
  if (!needRoot(t)) return;
  const base = tempDir(t);
  const marker = join(base, 'ran');
  const argv = ['/bin/sh', '-c', `touch ${marker}`];
  // A manifest that is a link to a valid manifest elsewhere.
  const elsewhere = await snapshotIn(base, draft(argv, base));
  const linked = await snapshotIn(base, draft(['/bin/true'], base));
  rmSync(join(linked, '000001', MANIFEST_NAME));
  symlinkSync(join(elsewhere, '000001', MANIFEST_NAME), join(linked, '000001', MANIFEST_NAME));
  assertCoded(await ckpt(['restart', linked]), 'ECKPT_SNAPSHOT_FORMAT');
  // A linked subdirectory, and a file others may write.
  const sub = await snapshotIn(base, draft(argv, base), { 'images/pages.img': 'x' });
  renameSync(join(sub, '000001', 'images'), join(base, 'images-elsewhere'));
  symlinkSync(join(base, 'images-elsewhere'), join(sub, '000001', 'images'));
  for (const args of [['restart', sub], ['snapshots', 'verify', sub]]) assertCoded(await ckpt(args), 'ECKPT_SNAPSHOT_FORMAT');
  const loose = await snapshotIn(base, draft(argv, base), { 'state.bin': 'x' });
  chmodSync(join(loose, '000001', 'state.bin'), 0o666);
  assertCoded(await ckpt(['restart', loose]), 'ECKPT_SNAPSHOT_OWNER');
  assert.ok(!existsSync(marker), 'nothing ran');
});

test("root does not write into a store another user owns or may write", async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const home = userDir(t, user);
  const victim = new Program('sleep', ['1000']);
  t.after(() => victim.kill());
  const theirs = join(home, 'store');
  execFileSync('install', ['-d', '-m', '0700', '-o', String(user.uid), '-g', String(user.gid), theirs]);
  const groupWritable = join(tempDir(t), 'store');
  mkdirSync(groupWritable, { mode: 0o770 });
  chmodSync(groupWritable, 0o770);
  for (const store of [theirs, groupWritable]) {
    assert.throws(() => beginSnapshot(store), { code: 'ECKPT_SNAPSHOT_OWNER' });
    assertCoded(await ckpt(['checkpoint', '--pid', String(victim.pid), '--dir', store, '--crs', 'criu']), 'ECKPT_SNAPSHOT_OWNER');
    assert.deepEqual(readdirSync(store), [], 'nothing written');
  }
  assert.ok(['S', 'R'].includes(readFileSync(`/proc/${victim.pid}/stat`, 'utf8').split(') ')[1]![0]!), 'the process runs on');
});

/**
 * The user races every commit: as soon as a partial snapshot appears in root's store
 * (which sits in a directory the user may write), they move the store away and put
 * their own in its place, with a partial directory of the same name whose manifest is
 * a link to a root-only file and whose image file they can read.
 */
const RACER = `
const fs = require('node:fs'), path = require('node:path');
const [parent, target] = process.argv.slice(1);
const store = path.join(parent, 'store');
let n = 0;
process.stdin.on('end', () => process.exit(0)).resume();
(function poll() {
  let names = [], uid = -1;
  // Its names and owner from one directory (by path twice, they could come from two: root puts its store back with two renames).
  try { const fd = fs.openSync(store, 'r'); try { uid = fs.fstatSync(fd).uid; names = fs.readdirSync('/proc/self/fd/' + fd); } finally { fs.closeSync(fd); } } catch {}
  const partial = names.find((x) => x.startsWith('.partial-'));
  if (partial && uid === 0) {
    try {
      fs.renameSync(store, path.join(parent, 'moved-' + n));
      fs.mkdirSync(path.join(store, partial, 'images'), { recursive: true, mode: 0o777 });
      fs.symlinkSync(target, path.join(store, partial, 'manifest.json'));
      fs.writeFileSync(path.join(store, partial, 'images', 'pages-1.img'), '', { mode: 0o666 });
      console.log('swapped ' + n++);
    } catch (e) { console.log('failed ' + e.message); }
  }
  setImmediate(poll);
})();
`;

test('a user racing 50 commits into a store in their directory never gets a root-only file written or a file to read', async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const home = userDir(t, user);
  chmodSync(home, 0o755);
  const secret = join(tempDir(t), 'root-only');
  writeFileSync(secret, 'root only\n', { mode: 0o600 });
  const store = join(home, 'store');
  mkdirSync(store, { mode: 0o755 }); // readable, so the user sees partial directories appear
  chmodSync(store, 0o755);
  const { ino } = statSync(store);
  const racer = spawn(process.execPath, ['-e', RACER, home, secret], { uid: user.uid, gid: user.gid, stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => racer.kill('SIGKILL'));
  const lines = createInterface({ input: racer.stdout! })[Symbol.asyncIterator]();
  const original = () => join(home, readdirSync(home).find((n) => statSync(join(home, n)).ino === ino)!);
  for (let i = 0; i < 50; i++) {
    // Root's store back in place (the user moved it last round).
    if (original() !== store) {
      renameSync(store, join(home, `theirs-${i}`));
      renameSync(original(), store);
    }
    const pending = beginSnapshot(store);
    const swapped = (await lines.next()).value as string;
    assert.match(swapped, /^swapped /, `the user swapped the store: ${swapped}`);
    writeFileSync(join(pending.dir, 'state.bin'), `memory of root ${i}`, { mode: 0o600 });
    await commitSnapshot(pending, draft(['/bin/true'], '/') as never);
  }
  racer.stdin!.end();
  await once(racer, 'exit');
  assert.equal(readFileSync(secret, 'utf8'), 'root only\n', 'the root-only file is untouched');
  // Every commit landed in root's own store, private; nothing of root's is in the user's.
  const ours = original();
  assert.equal(readdirSync(ours).filter((n) => /^\d{6}$/.test(n)).length, 50);
  for (const name of readdirSync(home)) {
    const dir = join(home, name);
    if (dir === ours) continue;
    for (const f of execFileSync('find', [dir], { encoding: 'utf8' }).trim().split('\n')) {
      assert.notEqual(lstatSync(f).uid, 0, `${f} was written by root into the user's directory`);
    }
  }
  assert.equal(openSnapshot(ours).seq, 50);
});

test('malformed snapshots get one coded line at once: FIFO, directory, oversized or over-deep manifest; no images; missing cwd', async (t) => {
  if (!needRoot(t)) return;
  const base = tempDir(t);
  const make = async () => snapshotIn(base, draft(['/bin/true'], base));
  const manifestOf = (store: string) => join(store, '000001', MANIFEST_NAME);
  const fifo = await make();
  rmSync(manifestOf(fifo));
  execFileSync('mkfifo', ['-m', '0600', manifestOf(fifo)]);
  const dir = await make();
  rmSync(manifestOf(dir));
  mkdirSync(manifestOf(dir), { mode: 0o700 });
  const big = await make();
  truncateSync(manifestOf(big), 65 << 20); // sparse: the size alone must refuse it
  // A field nested 100 000 deep: JSON.parse takes it, printing it back (inspect --json) would overflow the stack.
  const deep = await make();
  const text = readFileSync(manifestOf(deep), 'utf8').trimEnd();
  writeFileSync(manifestOf(deep), `${text.slice(0, -1)}, "deep": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
  for (const store of [fifo, dir, big, deep]) {
    for (const args of [['restart', store], ['snapshots', 'verify', store], ['snapshots', 'inspect', store], ['snapshots', 'inspect', '--json', store]]) {
      assertCoded(await ckpt(args, {}, 20_000), 'ECKPT_SNAPSHOT_FORMAT');
    }
    const ls = await ckpt(['snapshots', 'ls', store], {}, 20_000);
    assert.equal(ls.signal, null, 'ls returns');
  }
  const noImages = await snapshotIn(base, draft(['/bin/true'], base, 'criu'));
  const r = await ckpt(['restart', noImages]);
  assertCoded(r, 'ECKPT_SNAPSHOT_FORMAT');
  assert.match(r.stderr, /holds no CRIU images/);
  assert.doesNotMatch(r.stderr, /CRIU's log/);
  const gone = join(base, 'gone');
  mkdirSync(gone);
  const noCwd = await snapshotIn(base, draft(['/bin/true'], gone));
  rmSync(gone, { recursive: true });
  const c = await ckpt(['restart', noCwd]);
  assertCoded(c, 'ECKPT_CWD_MISSING');
  assert.match(c.stderr, new RegExp(gone));
});

test("a user resuming root's process: ECKPT_PERMISSION, not an internal error", async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const bin = userInstall();
  // In a session of its own: SIGCONT may be sent to any process of one's own session.
  const victim = new Program('sleep', ['1000'], {}, { session: true });
  t.after(() => victim.kill());
  const r = await runAsUser(user, process.execPath, [bin, 'resume', String(victim.pid)]);
  assertCoded(r, 'ECKPT_PERMISSION');
});

test('partial snapshots of writers that are gone are swept by the next checkpoint; a live writer keeps its own', async (t) => {
  const store = join(tempDir(t), 'store');
  const live = beginSnapshot(store);
  const dead = spawn('true');
  await once(dead, 'exit');
  const host = execFileSync('hostname', { encoding: 'utf8' }).trim();
  const stale = join(store, `.partial-000009-abcd1234-${dead.pid}@${host}`);
  mkdirSync(join(stale, 'images'), { recursive: true, mode: 0o700 });
  writeFileSync(join(stale, 'images', 'pages-1.img'), Buffer.alloc(4096));
  const next = beginSnapshot(store);
  assert.ok(!existsSync(stale), 'the dead writer\'s partial directory is gone');
  assert.ok(existsSync(live.path), 'a live writer\'s is kept');
  assert.equal(next.seq, 2, 'numbers still count past the live partial one');
  // `ckpt snapshots gc` does the same on demand.
  mkdirSync(stale, { mode: 0o700 });
  const gc = await ckpt(['snapshots', 'gc', store, '--json']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(JSON.parse(gc.stdout).removed.map((r: { path: string }) => r.path), [stale]);
  assert.ok(existsSync(live.path) && existsSync(next.path));
});

test('secrets in the environment are recorded by name only; a restart takes them from its own environment', async (t) => {
  const base = tempDir(t);
  const out = join(base, 'seen');
  const store = await snapshotIn(base, {
    ...draft(['/bin/sh', '-c', `echo "$API_TOKEN $PLAIN" > ${out}`], base),
  });
  // What ckpt records of a real environment:
  const { recordEnv } = await import('../../dist/store/env.js');
  const recorded = recordEnv({ API_TOKEN: 's3cret', DB_PASSWORD: 'pw', PLAIN: 'visible' });
  assert.deepEqual(recorded, { env: { PLAIN: 'visible' }, envWithheld: ['API_TOKEN', 'DB_PASSWORD'] });
  // Other spellings of the same: a Slurm token, a PMIx credential, a personal access token, a password.
  const more = recordEnv({ SLURM_JWT: 'x', PMIX_SECURITY_CRED: 'x', GITHUB_PAT: 'x', DB_PASS: 'x', PATH: '/bin' });
  assert.deepEqual(more, { env: { PATH: '/bin' }, envWithheld: ['DB_PASS', 'GITHUB_PAT', 'PMIX_SECURITY_CRED', 'SLURM_JWT'] });
  editManifest(store, (m) => Object.assign(m.process, recorded));
  const r = await ckpt(['restart', store], { API_TOKEN: 'fresh' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(out, 'utf8').trim(), 'fresh visible');
  const inspect = await ckpt(['snapshots', 'inspect', store, '--json']);
  assert.doesNotMatch(inspect.stdout, /visible/, 'values hidden');
  assert.match((await ckpt(['snapshots', 'inspect', store, '--json', '--show-env'])).stdout, /visible/);
});
