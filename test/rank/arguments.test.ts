// The rank library's checks of what a program passes it (src/rank/arguments.ts,
// codec.ts), in a real 2-rank job: a value JSON would carry as something else, one
// no receiver would take, a timeout that would never fire, a non-function hook and a
// checkpoint after finalize are each ECKPT_USAGE at the call; an allreduce whose
// ranks disagree fails on every rank; init() twice is one job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ckpt, fixture, privateStateDir } from '../helpers.js';

test('bad arguments to the rank library: ECKPT_USAGE at the call, nothing sent, the job goes on and ends well', async () => {
  privateStateDir();
  const r = await ckpt(['run', '-n', '2', '--', process.execPath, fixture('runtime/bad-calls.mjs')]);
  assert.equal(r.code, 0, r.stderr);
  const byRank = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('{')).map((l) => JSON.parse(l.slice(l.indexOf('{')))).map((o) => [o.rank, o]));
  const zero = byRank[0];
  for (const name of ['cyclic', 'bigint', 'toJSONThrows', 'nan', 'infinity', 'float64Array', 'nestedBytes', 'map', 'tooBig', 'negativeTimeout', 'nanTimeout', 'stringTimeout', 'barrierTimeout', 'registerSelfNull', 'hookNotAFunction']) {
    assert.equal(zero[name], 'ECKPT_USAGE', `${name}: ${zero[name]}`);
  }
  assert.equal(zero.recvNullOptions, 'hi');
  for (const rank of [0, 1]) {
    assert.equal(byRank[rank].initAgain, true, 'init() again: the same communicator');
    assert.equal(byRank[rank].checkpointAfterFinalize, 'ECKPT_USAGE');
    assert.equal(byRank[rank].opMismatch, 'ECKPT_USAGE', 'every rank hears of a mismatch');
    assert.equal(byRank[rank].overflow, 'ECKPT_USAGE');
    assert.equal(byRank[rank].afterwards, 3, 'the next allreduce is whole');
  }
});
