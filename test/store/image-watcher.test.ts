// The commit overlapped with the dump: page images hashed while they grow give the
// manifest the commit alone would write, also when an image shrank or was replaced
// after the watcher read it. Driven by explicit polls, not by the interval.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beginSnapshot, commitSnapshot, verifySnapshot } from '../../dist/store/store.js';
import { hashFile } from '../../dist/store/checksum.js';
import { ImageWatcher, type WriteProgress } from '../../dist/store/image-watcher.js';
import { manifestDraft } from '../helpers/snapshots.js';
import { tempDir } from '../helpers.js';

const MB = 1 << 20;

const draft = () => manifestDraft();

async function scenario(t: TestContext, write: (images: string, poll: () => void) => void | Promise<void>) {
  const store = join(tempDir(t), 'store');
  const pending = beginSnapshot(store);
  const images = join(pending.dir, 'images');
  const events: WriteProgress[] = [];
  const watcher = new ImageWatcher({ dir: pending.handles!.dir, sub: 'images', overlap: true, expectedBytes: 40 * MB, intervalMs: 1 << 30, onProgress: (p) => events.push(p) });
  t.after(() => watcher.close());
  watcher.poll(); // before CRIU made the directory: nothing to see
  mkdirSync(images, { mode: 0o700 });
  await write(images, () => watcher.poll());
  // What the file holds now, hashed from scratch: what the manifest must say.
  const expected = new Map<string, string>();
  for (const name of ['pages-1.img', 'pages-2.img', 'inventory.img']) {
    try {
      expected.set(`images/${name}`, await hashFile(join(images, name)));
    } catch {}
  }
  const snapshot = await commitSnapshot(pending, draft(), { watcher });
  for (const [path, sum] of expected) assert.equal(snapshot.manifest.files.find((f) => f.path === path)?.xxh64, sum, path);
  const v = await verifySnapshot(snapshot);
  assert.ok(v.ok, JSON.stringify(v.problems));
  return { events, snapshot };
}

/** Lets the hashes started by a poll finish (each poll starts at most one per file). */
const settle = () => new Promise((r) => setTimeout(r, 0));

test('page images hashed as they grow: the manifest is the full hash of the final files; progress counts bytes', async (t) => {
  const { events } = await scenario(t, async (images, poll) => {
    for (let i = 0; i < 5; i++) {
      appendFileSync(join(images, 'pages-1.img'), randomBytes(9 * MB + 7));
      poll();
      await settle();
    }
    appendFileSync(join(images, 'pages-1.img'), randomBytes(13)); // a tail that is not a whole stripe
    writeFileSync(join(images, 'inventory.img'), 'first');
    poll();
    writeFileSync(join(images, 'inventory.img'), 'rewritten at the end');
  });
  assert.ok(events.length > 0 && events.every((e) => e.bytes > 0 && e.expectedBytes === 40 * MB));
  assert.ok(events.some((e) => e.etaMs !== undefined), 'a time left while below the expected size');
});

test('a page image that shrinks, or is replaced, after it was hashed is hashed in full', async (t) => {
  await scenario(t, async (images, poll) => {
    writeFileSync(join(images, 'pages-1.img'), randomBytes(20 * MB));
    writeFileSync(join(images, 'pages-2.img'), randomBytes(20 * MB));
    poll();
    await settle();
    poll();
    truncateSync(join(images, 'pages-1.img'), 3 * MB);
    poll();
    rmSync(join(images, 'pages-2.img'));
    writeFileSync(join(images, 'pages-2.img'), randomBytes(24 * MB));
    poll();
  });
});
