// --stage DIR after a crash: a checkpoint's staged directory (DIR/<job>/<seq>-<writer>)
// whose writer — the node agent or one-host coordinator that was to copy and remove
// it — is gone is removed when DIR is next used (a job's start, each stage copy);
// never a live writer's, another host's, an untagged one, another user's, and no link
// is followed. The writers are real processes: one that exits, one that stays; as root,
// also node agents as pid 1 of a pid namespace of their own, judged by their beacons
// (util/writer-beacon.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stagedRankDir } from '../../dist/store/stage.js';
import { sweepDeadStaged } from '../../dist/store/stage-sweep.js';
import { copyStagedHere } from '../../dist/runtime/stage-copy.js';
import { formatTag, ownTag, parseTag } from '../../dist/util/writer-tag.js';
import { heldTag } from '../../dist/util/writer-beacon.js';
import { ckpt, root, tempDir } from '../helpers.js';
import { writerProcess } from '../helpers/writer-process.js';

const beaconModule = pathToFileURL(join(root, 'dist', 'util', 'writer-beacon.js')).href;

/**
 * A real process's writer tag (its beacon held, as a writer's is); with `stay` it runs
 * on (until the test ends), else it has exited. `pidns`: as a node agent as root is,
 * pid 1 of a pid namespace of its own.
 */
async function processTag(t: TestContext, stay: boolean, pidns = false): Promise<string> {
  const code = `const m = await import(${JSON.stringify(beaconModule)}); console.log(await m.heldTag());`;
  const { child, line: tag } = await writerProcess(t, code, stay, pidns);
  assert.equal(parseTag(tag)?.pid, pidns ? 1 : child.pid, tag);
  return tag;
}

/** A rank's staged images, as CRIU leaves them (1 MiB of pages). */
function stageRank(stage: string, job: string, seq: number, writer: string | undefined, rank = 0): string {
  const dir = stagedRankDir(stage, job, seq, `rank-${rank}`, writer);
  mkdirSync(join(dir, 'images'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'images', 'pages-1.img'), Buffer.alloc(1 << 20, 7));
  writeFileSync(join(dir, 'images', 'core-1.img'), 'core');
  return dir;
}

/** DIR with a dead writer's checkpoint (two ranks), a live process's, ours, another host's, an untagged one, decoys. */
async function litteredStage(t: TestContext) {
  const stage = tempDir(t, 'ckpt-stage-');
  const dead = await processTag(t, false);
  const live = await processTag(t, true);
  const mine = (await heldTag())!;
  const deadRanks = [stageRank(stage, 'jobA', 3, dead, 0), stageRank(stage, 'jobA', 3, dead, 1)];
  // A job with only a dead writer's leftovers: its directory goes too.
  const deadOnly = stageRank(stage, 'jobB', 7, dead);
  const kept = [
    stageRank(stage, 'jobA', 4, live),
    stageRank(stage, 'jobA', 5, mine),
    stageRank(stage, 'jobC', 3, formatTag({ ...parseTag(dead)!, host: 'elsewhere' })),
    stageRank(stage, 'jobC', 4, undefined),
  ];
  // Links inside a dead writer's directory are removed, never followed.
  const outside = tempDir(t);
  writeFileSync(join(outside, 'precious'), 'keep me');
  symlinkSync(outside, join(deadRanks[0]!, 'images', 'link-to-dir'));
  // A link named as a dead writer's checkpoint: kept, its target untouched.
  symlinkSync(outside, join(stage, 'jobC', `9-${dead}`));
  kept.push(join(stage, 'jobC', `9-${dead}`), join(outside, 'precious'));
  // Another user's, with a dead writer's name (root could remove it: the owner is what counts).
  if (process.geteuid?.() === 0) {
    const theirs = stageRank(stage, 'jobD', 2, dead);
    for (const d of [join(stage, 'jobD'), join(stage, 'jobD', `2-${dead}`)]) chownSync(d, 4242, 4242);
    kept.push(theirs);
  }
  return { stage, dead, live, mine, deadRanks, deadOnly, kept };
}

test('sweepDeadStaged: a dead writer\'s staged checkpoints go (and a job directory left empty); a live one\'s, ours, another host\'s, untagged, another user\'s and links stay', async (t) => {
  const s = await litteredStage(t);
  const swept = (await sweepDeadStaged(s.stage));
  assert.deepEqual(swept.removed.sort(), [`jobA/3-${s.dead}`, `jobB/7-${s.dead}`]);
  for (const d of [...s.deadRanks, s.deadOnly]) assert.equal(existsSync(d), false, `${d} is gone`);
  assert.equal(existsSync(join(s.stage, 'jobB')), false, 'a job directory left empty goes');
  for (const d of s.kept) assert.ok(existsSync(d), `${d} is kept`);
  assert.deepEqual((await sweepDeadStaged(s.stage)).removed, [], 'a second sweep finds nothing');
  // A directory that is not a usable stage (open to others) is not swept at all.
  assert.deepEqual((await sweepDeadStaged('/tmp')).removed, []);
});

test('each stage copy sweeps first: the dead writer\'s leftovers go, the copy of ours goes on', async (t) => {
  const s = await litteredStage(t);
  const to = join(tempDir(t), 'rank-0');
  mkdirSync(to, { mode: 0o700 });
  const from = stagedRankDir(s.stage, 'jobA', 5, 'rank-0', s.mine);
  const [copied] = await copyStagedHere({ items: [{ rank: 0, from, to }], stage: s.stage });
  assert.deepEqual(copied!.files.map((f) => f.path).sort(), ['images/core-1.img', 'images/pages-1.img']);
  for (const d of [...s.deadRanks, s.deadOnly]) assert.equal(existsSync(d), false, `${d} is gone`);
  assert.equal(existsSync(from), false, 'its own staged copy is removed after the copy');
  for (const d of s.kept.filter((d) => !d.startsWith(join(s.stage, 'jobA', `5-`)))) assert.ok(existsSync(d), `${d} is kept`);
});

test('ckpt run --stage on one host: what a dead coordinator left staged goes at the start, a live one\'s stays', async (t) => {
  const s = await litteredStage(t);
  const r = await ckpt(['run', '-n', '2', '--stage', s.stage, '--dir', join(tempDir(t), 'store'), '--', process.execPath, '-e', '']);
  assert.equal(r.code, 0, r.stderr);
  for (const d of [...s.deadRanks, s.deadOnly]) assert.equal(existsSync(d), false, `${d} is gone`);
  // Ours (this test process's) and the live process's: their writers run.
  for (const d of s.kept) assert.ok(existsSync(d), `${d} is kept`);
  assert.deepEqual(readdirSync(join(s.stage, 'jobA')).sort(), [`4-${s.live}`, `5-${s.mine}`]);
});

test('sweepDeadStaged, node agents in pid namespaces of their own (root): a dead one\'s staged checkpoints go by its beacon, a live one\'s stay, another network namespace\'s stay', async (t) => {
  if (process.geteuid?.() !== 0) return t.skip('needs root (unshare --pid)');
  const stage = tempDir(t, 'ckpt-stage-');
  const dead = await processTag(t, false, true);
  const live = await processTag(t, true, true);
  assert.notEqual(parseTag(dead)!.pidns, ownTag()!.pidns, 'its pid means nothing here');
  const gone = stageRank(stage, 'jobA', 3, dead);
  const kept = [stageRank(stage, 'jobA', 4, live)];
  // A writer of another pid and network namespace: its beacon could not be seen from here.
  kept.push(stageRank(stage, 'jobB', 3, formatTag({ ...parseTag(dead)!, netns: parseTag(dead)!.netns + 1 })));
  assert.deepEqual((await sweepDeadStaged(stage)).removed, [`jobA/3-${dead}`]);
  assert.equal(existsSync(gone), false);
  for (const d of kept) assert.ok(existsSync(d), `${d} is kept`);
});
