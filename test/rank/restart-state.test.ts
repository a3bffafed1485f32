// A restarted self rank whose part of the snapshot cannot be read (src/rank/init.ts
// cannotRestart, crs/self/job-rank.ts savedState): a damaged snapshot restarted with
// --no-verify (or with checksums made to match) ends in one line from the rank and
// one from ckpt, never a stack trace through the library's bundle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, fixture, tempDir, waitForListedJob } from '../helpers.js';

test("a self rank's state.json damaged: the restart ends with the rank's one line and ckpt's, no stack trace", async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  // Every rank's state in files of its own (none packed), so that one rank's file can be damaged.
  const env = { CKPT_STATE_DIR: join(dir, 'state'), CKPT_SELF_INLINE_BYTES: '0' };
  const name = `dmg${process.pid}`;
  const run = ckptProgram(['run', '-n', '2', '--crs', 'self', '--name', name, '--dir', store, '--', process.execPath, fixture('jobs/ticker.mjs')], env);
  t.after(() => run.kill());
  await waitForListedJob(name, env);
  const term = await ckpt(['checkpoint', name, '--term'], env);
  assert.equal(term.code, 0, term.stderr);
  await run.exited;
  const seqDir = join(store, readdirSync(store).find((n) => /^\d{6}$/.test(n))!);
  const rankDir = join(seqDir, readdirSync(seqDir).find((n) => n.startsWith('rank-'))!);
  writeFileSync(join(rankDir, 'state.json'), '{"tick": ');

  const r = await ckpt(['restart', store, '--no-verify'], env, 120_000);
  assert.notEqual(r.code, 0);
  assert.doesNotMatch(r.stderr, /\n\s+at |chunk-|node:internal/, r.stderr);
  assert.match(r.stderr, /ckpt\/rank: rank \d cannot restart from its snapshot: rank \d's saved state \(state\.json\) is not JSON: .*\[ECKPT_SNAPSHOT_CORRUPT\]; exiting/);
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.length <= 3, `a line from the rank and one from ckpt (and at most one from the other rank): ${r.stderr}`);
  assert.match(lines.at(-1)!, /^ckpt: .*rank \d.*\[ECKPT_[A-Z_]+\]$/);
});
