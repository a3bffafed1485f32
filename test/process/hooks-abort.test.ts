// checkpoint() of one process: a checkpoint that fails after onPrepare ran still
// runs onContinue (aborted: true), so a program that quiesced gets to undo it; the
// error goes on to the caller and no snapshot is left.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkpoint, onContinue, onPrepare, registerSelf, type CheckpointResult } from '../../dist/index.js';
import { tempDir } from '../helpers.js';

test('a failed checkpoint runs onContinue with aborted: true, then fails; a good one runs it without', async (t) => {
  const store = join(tempDir(t), 'store');
  let quiesced = false;
  const seen: CheckpointResult[] = [];
  t.after(onPrepare(() => void (quiesced = true)));
  t.after(
    onContinue((info) => {
      quiesced = false;
      seen.push(info);
    }),
  );
  let fail = true;
  registerSelf({
    save: () => {
      if (fail) throw new Error('save() cannot now');
      return { n: 1 };
    },
    load: () => {},
  });
  await assert.rejects(checkpoint({ dir: store, crs: 'self' }), /save\(\) cannot now/);
  assert.equal(quiesced, false, 'onContinue undid onPrepare');
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.aborted, true);
  assert.equal(seen[0]!.state, 'continue');
  assert.deepEqual(existsSync(store) ? readdirSync(store).filter((n) => !n.startsWith('.')) : [], [], 'no snapshot');
  fail = false;
  const result = await checkpoint({ dir: store, crs: 'self' });
  assert.equal(result.aborted, undefined);
  assert.equal(seen.length, 2);
  assert.equal(seen[1]!.aborted, undefined);
});
