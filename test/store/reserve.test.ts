// The next snapshot's directory made ahead (a job's, once a checkpoint is over): taken
// by the next checkpoint only while nothing in the store changed; otherwise removed and
// a new one begun, so a seq is never reused and no directory is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SnapshotReserve } from '../../dist/store/reserve.js';
import { beginSnapshot, commitSnapshot, abortSnapshot } from '../../dist/store/store.js';
import { tempDir } from '../helpers.js';
import { manifestDraft } from '../helpers/snapshots.js';

const partials = (store: string) => readdirSync(store).filter((n) => n.startsWith('.partial-'));

test('made ahead, taken as it is: the same directory, the next seq', async (t) => {
  const store = join(tempDir(t), 'store');
  await commitSnapshot(beginSnapshot(store), manifestDraft());
  const reserve = new SnapshotReserve();
  reserve.refill(store, 'criu', ['rank-0', 'rank-0/images']);
  const [made] = partials(store);
  assert.ok(made, 'one partial directory made ahead');
  const pending = reserve.take(store, 'criu');
  assert.equal(pending.seq, 2);
  assert.equal(pending.path, join(store, made!));
  assert.deepEqual(partials(store), [made], 'taken, not made again');
  assert.equal(statSync(join(pending.path, 'rank-0', 'images')).mode & 0o7777, 0o700, 'with its private subdirectories');
  const snapshot = await commitSnapshot(pending, manifestDraft());
  assert.equal(snapshot.seq, 2);
  assert.deepEqual(readdirSync(store).sort(), ['000001', '000002']);
});

test('the store changed since (a snapshot came, one went): removed, and a new one begun with the right seq', async (t) => {
  const store = join(tempDir(t), 'store');
  const reserve = new SnapshotReserve();
  await commitSnapshot(beginSnapshot(store), manifestDraft());
  reserve.refill(store, 'self');
  const [stale] = partials(store);
  // Another writer commits meanwhile (after the seq made ahead): that one must not be used.
  const other = await commitSnapshot(beginSnapshot(store), manifestDraft());
  const pending = reserve.take(store, 'self');
  assert.equal(pending.seq, other.seq + 1);
  assert.ok(!readdirSync(store).includes(stale!), 'the stale one is gone');
  assert.equal(partials(store).length, 1);
  abortSnapshot(pending);
  // A directory made and removed in the store: its change time or links moved.
  reserve.refill(store, 'self');
  const [second] = partials(store);
  mkdirSync(join(store, 'x'));
  rmdirSync(join(store, 'x'));
  mkdirSync(join(store, 'y'));
  const again = reserve.take(store, 'self');
  assert.notEqual(again.path, join(store, second!));
  assert.ok(!readdirSync(store).includes(second!));
  abortSnapshot(again);
});

test('another store, or the job ends: nothing taken, nothing left', async (t) => {
  const base = tempDir(t);
  const a = join(base, 'a');
  const b = join(base, 'b');
  mkdirSync(a, { mode: 0o700 });
  const reserve = new SnapshotReserve();
  reserve.refill(a, 'self');
  const other = reserve.take(b, 'self');
  assert.equal(other.path.startsWith(b), true);
  assert.deepEqual(partials(a), [], "a's is removed once another store is asked for");
  abortSnapshot(other);
  reserve.refill(a, 'self');
  assert.equal(partials(a).length, 1);
  reserve.discard();
  assert.deepEqual(partials(a), []);
});

test('made for one checkpointer, asked for by another (a self job checkpointed with criu): made anew', async (t) => {
  const store = join(tempDir(t), 'store');
  const reserve = new SnapshotReserve();
  reserve.refill(store, 'self');
  const [made] = partials(store);
  const pending = reserve.take(store, 'criu');
  assert.notEqual(pending.path, join(store, made!));
  assert.deepEqual(partials(store), [pending.path.slice(store.length + 1)], 'the one made for self is gone');
  assert.equal(pending.seq, 1);
  abortSnapshot(pending);
});
