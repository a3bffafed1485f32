// The job registry's sweep of dead jobs (src/registry/jobs.ts listJobs): a dead job's
// entry goes, and its socket directory ($TMPDIR/ckpt-<id>-XXXXXX) with it, but only
// while that name is still root's private directory. A launcher killed and /tmp
// emptied at boot leave the name free: another user may make a directory by it, and
// root's next `ckpt ps` must not remove (or follow links in) what they put there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, needRoot, tempDir, testUser } from '../helpers.js';

/** A registry entry of a job whose launcher is gone (this process, with a start time it never had). */
function deadJob(state: string, id: string, dir: string): void {
  mkdirSync(join(state, 'jobs'), { recursive: true, mode: 0o700 });
  const record = { id, name: `job-${id}`, size: 1, oob: 'unix', address: `unix:${dir}/coord.sock`, dir, secret: '0'.repeat(64), pid: process.pid, pidStart: 1, command: ['true'], ranks: [{ rank: 0, pid: null }], state: 'running', startedAt: 1 };
  writeFileSync(join(state, 'jobs', `${id}.json`), JSON.stringify(record), { mode: 0o600 });
}

test("ckpt ps as root: a dead job's socket directory goes only while it is root's own; another user's by that name is left, links in it never followed", async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const state = tempDir(t);
  const tmp = tempDir(t);
  execFileSync('chmod', ['1777', tmp]); // as /tmp: every user can make a name in it
  // What root must not lose: a file only root can read, in a directory only root can enter.
  const victim = join(tempDir(t), 'rootonly');
  mkdirSync(victim, { mode: 0o700 });
  writeFileSync(join(victim, 'important'), 'keep', { mode: 0o600 });

  // Job a1: its directory is gone, and another user made one by its name.
  const theirs = join(tmp, 'ckpt-a1-AbCdEf');
  mkdirSync(join(theirs, 's'), { recursive: true });
  writeFileSync(join(theirs, 'their-file'), 'theirs');
  symlinkSync(victim, join(theirs, 's', 'link'));
  execFileSync('chown', ['-R', '-h', `${user.uid}:${user.gid}`, theirs]);
  deadJob(state, 'a1', theirs);

  // Job b2: its own private directory, a link to the victim planted in it (as root could not be fooled into following).
  const mine = join(tmp, 'ckpt-b2-GhIjKl');
  mkdirSync(join(mine, 'sub'), { recursive: true, mode: 0o700 });
  writeFileSync(join(mine, 'coord.sock'), '');
  symlinkSync(victim, join(mine, 'sub', 'link'));
  deadJob(state, 'b2', mine);

  // Job c3: the name is the other user's private directory (0700, theirs): not root's either.
  const theirsPrivate = join(tmp, 'ckpt-c3-MnOpQr');
  mkdirSync(theirsPrivate, { mode: 0o700 });
  writeFileSync(join(theirsPrivate, 'kept'), 'theirs');
  chownSync(theirsPrivate, user.uid, user.gid);
  deadJob(state, 'c3', theirsPrivate);

  const r = await ckpt(['ps', '--json'], { CKPT_STATE_DIR: state });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).jobs, [], 'no job runs');
  assert.deepEqual(readdirSync(join(state, 'jobs')), [], 'the dead entries are gone');

  assert.equal(readFileSync(join(theirs, 'their-file'), 'utf8'), 'theirs', "the other user's directory by that name is left whole");
  assert.ok(lstatSync(join(theirs, 's', 'link')).isSymbolicLink());
  assert.equal(readFileSync(join(theirsPrivate, 'kept'), 'utf8'), 'theirs');
  assert.equal(existsSync(mine), false, "the job's own directory is removed");
  assert.equal(readFileSync(join(victim, 'important'), 'utf8'), 'keep', 'nothing through a link');
});

test('registry entries that are a FIFO, a directory, JSON null or a stray object: ps, kill and checkpoint neither hang nor fail on them', async (t) => {
  const state = tempDir(t);
  const jobs = join(state, 'jobs');
  mkdirSync(jobs, { mode: 0o700 });
  execFileSync('mkfifo', ['-m', '0600', join(jobs, 'f1f0.json')]);
  mkdirSync(join(jobs, 'd1d0.json'));
  writeFileSync(join(jobs, 'a0a0.json'), 'null');
  writeFileSync(join(jobs, 'b0b0.json'), '{"pid": "x"}');
  const env = { CKPT_STATE_DIR: state };
  const ps = await ckpt(['ps', '--json'], env, 30_000);
  assert.equal(ps.code, 0, ps.stderr);
  assert.deepEqual(JSON.parse(ps.stdout).jobs, []);
  for (const args of [['kill', 'f1f0'], ['checkpoint', 'd1d0']]) {
    const r = await ckpt(args, env, 30_000);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^ckpt: no running job '.*' \(see 'ckpt ps'\) \[ECKPT_JOB_NOT_FOUND\]\n$/);
  }
  // Records that are no records go (a torn write); what is not a regular file is left, not read.
  assert.deepEqual(readdirSync(jobs).sort(), ['d1d0.json', 'f1f0.json']);
});
