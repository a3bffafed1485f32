// The node agent's relay directories ($TMPDIR/ckpt-agent-XXXXXX): a starting agent
// removes those a dead agent of this user on this host left (a SIGKILLed one cannot
// remove its own), and nothing else — not a live agent's (this process's, or another
// running process's), not another host's, not another user's, not one it cannot read
// its writer from, and no link is followed. The writers are real processes: one spawned
// that makes its directory and exits, one that stays; as root, also agents as pid 1 of
// a pid namespace of their own (judged by their beacons: util/writer-beacon.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeRelayDir, sweepRelayDirs } from '../../dist/agent/relay-dir.js';
import { RankRelay } from '../../dist/agent/rank-relay.js';
import type { Channel } from '../../dist/wire/channel.js';
import { formatTag, ownTag, parseTag, type WriterTag } from '../../dist/util/writer-tag.js';
import { heldTag } from '../../dist/util/writer-beacon.js';
import { root, tempDir } from '../helpers.js';
import { writerProcess } from '../helpers/writer-process.js';

const relayDirModule = pathToFileURL(join(root, 'dist', 'agent', 'relay-dir.js')).href;

/**
 * A process that makes a relay directory in `base` (as an agent does) and prints it;
 * with `stay`, it then runs until killed, else it exits. `pidns`: as pid 1 of a pid
 * namespace of its own (root). Resolves with its directory and tag.
 */
async function writer(t: TestContext, base: string, stay: boolean, pidns = false): Promise<{ dir: string; tag: WriterTag }> {
  const code = `const m = await import(${JSON.stringify(relayDirModule)}); console.log(await m.makeRelayDir(${JSON.stringify(base)}));`;
  const { child, line: dir } = await writerProcess(t, code, stay, pidns);
  const tag = parseTag(readFileSync(join(dir, 'writer'), 'utf8'));
  assert.ok(tag, `${dir} names its writer`);
  assert.equal(tag.pid, pidns ? 1 : child.pid, 'the writer is the process that made it');
  return { dir, tag };
}

/** A relay-looking directory made by hand, 0700 unless said, naming `tag` as its writer. */
function planted(base: string, name: string, tag: string, mode = 0o700): string {
  const dir = join(base, name);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'writer'), `${tag}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'relay.sock'), '');
  chmodSync(dir, mode);
  return dir;
}

test('sweepRelayDirs: a dead agent\'s directory goes; a live one\'s, another host\'s or pid namespace\'s, another user\'s, an open one, an unreadable one and links stay', async (t) => {
  const base = tempDir(t);
  const dead = await writer(t, base, false);
  const live = await writer(t, base, true);
  const mine = await makeRelayDir(base);
  const gone = formatTag(dead.tag);
  assert.ok(existsSync(dead.dir), 'a process that exits leaves its directory');

  const kept = [
    planted(base, 'ckpt-agent-Host01', formatTag({ ...dead.tag, host: 'elsewhere' })),
    planted(base, 'ckpt-agent-Pidns1', formatTag({ ...dead.tag, pidns: dead.tag.pidns + 1, netns: dead.tag.netns + 1 })),
    planted(base, 'ckpt-agent-Open01', gone, 0o755),
    planted(base, 'ckpt-agent-Bad001', 'not a tag'),
    planted(base, 'not-an-agent-dir', gone),
  ];
  // No writer file (an older agent's, or one killed before it wrote it).
  const unnamed = join(base, 'ckpt-agent-None01');
  mkdirSync(unnamed, { mode: 0o700 });
  kept.push(unnamed);
  // A writer file that is a link to a dead writer's tag: not followed.
  const linkedFile = join(base, 'ckpt-agent-Link01');
  mkdirSync(linkedFile, { mode: 0o700 });
  writeFileSync(join(base, 'tag'), gone);
  symlinkSync(join(base, 'tag'), join(linkedFile, 'writer'));
  kept.push(linkedFile);
  // A link named as a relay directory, to a dead writer's directory elsewhere: neither goes.
  const elsewhere = tempDir(t);
  const target = planted(elsewhere, 'ckpt-agent-Target', gone);
  symlinkSync(target, join(base, 'ckpt-agent-Link02'));
  kept.push(join(base, 'ckpt-agent-Link02'), target);
  // Another user's, with a dead writer's tag (root can open it: the owner is what counts).
  if (process.geteuid?.() === 0) {
    const theirs = planted(base, 'ckpt-agent-Other1', gone);
    chownSync(theirs, 4242, 4242);
    kept.push(theirs);
  }

  assert.deepEqual(await sweepRelayDirs(base), [dead.dir.slice(base.length + 1)]);
  assert.equal(existsSync(dead.dir), false, "the dead writer's directory is gone");
  for (const d of [live.dir, mine, ...kept]) assert.ok(existsSync(d), `${d} is kept`);
  assert.deepEqual(readdirSync(live.dir), ['writer']);
  assert.deepEqual(await sweepRelayDirs(base), [], 'a second sweep finds nothing');
});

test('sweepRelayDirs, agents in pid namespaces of their own (root): a dead one\'s directory goes by its beacon, a live one\'s stays, another network namespace\'s stays', async (t) => {
  if (process.geteuid?.() !== 0) return t.skip('needs root (unshare --pid)');
  const base = tempDir(t);
  const dead = await writer(t, base, false, true);
  const live = await writer(t, base, true, true);
  assert.notEqual(dead.tag.pidns, ownTag()!.pidns, 'its pid means nothing here');
  // A writer of another pid and network namespace: its beacon could not be seen from here.
  const unproven = planted(base, 'ckpt-agent-Netns1', formatTag({ ...dead.tag, netns: dead.tag.netns + 1 }));
  assert.deepEqual(await sweepRelayDirs(base), [dead.dir.slice(base.length + 1)]);
  for (const d of [live.dir, unproven]) assert.ok(existsSync(d), `${d} is kept`);
});

test('a starting agent\'s relay sweeps its base first and names itself in its own directory, which it removes at its end', async (t) => {
  const base = tempDir(t);
  const dead = await writer(t, base, false);
  const live = await writer(t, base, true);
  const deadNs = process.geteuid?.() === 0 ? await writer(t, base, false, true) : undefined;
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = base;
  t.after(() => (saved === undefined ? delete process.env.TMPDIR : (process.env.TMPDIR = saved)));
  const relay = new RankRelay({ send() {} } as unknown as Channel);
  const address = await relay.listen();
  const own = join(address.slice('unix:'.length), '..');
  assert.ok(own.startsWith(`${base}/ckpt-agent-`), address);
  assert.equal(existsSync(dead.dir), false, "a dead agent's directory is swept");
  if (deadNs) assert.equal(existsSync(deadNs.dir), false, "a dead agent's of another pid namespace too");
  assert.ok(existsSync(live.dir), "a live agent's directory stays");
  assert.equal(readFileSync(join(own, 'writer'), 'utf8').trim(), formatTag(ownTag()!));
  assert.equal(readFileSync(join(own, 'writer'), 'utf8').trim(), await heldTag(), 'its beacon held');
  relay.close();
  assert.equal(existsSync(own), false, 'its own directory goes at its end');
});
