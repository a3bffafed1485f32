// Rank-to-rank messaging and collectives, over both OOB transports, with real
// processes and sockets.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { privateStateDir, runJob, waitForJobLine } from '../helpers.js';

before(() => privateStateDir());

function okStatus(r: Awaited<ReturnType<typeof runJob>>): void {
  assert.equal(r.result.status, 0, `job failed: ${r.result.error?.message}\n${r.stderr.flat().join('\n')}`);
  assert.ok(r.result.ranks.every((x) => x.code === 0 && x.signal === null));
}

for (const oob of ['unix', 'tcp'] as const) {
  describe(`over ${oob}`, () => {
    for (const size of oob === 'unix' ? [1, 4, 16] : [4]) {
      test(`a ring of ${size} passes a counter around 3 times`, async () => {
        const r = await runJob('ring.mjs', size, { oob, argv: ['3'] });
        okStatus(r);
        const res = r.results.get(0);
        assert.equal(res.counter, 3 * size);
        assert.deepEqual(res.path, Array.from({ length: size }, (_, i) => i));
      });
    }

    test('ANY_SOURCE and ANY_TAG match, in order per (source, tag)', async () => {
      const size = 4;
      const r = await runJob('any.mjs', size, { oob });
      okStatus(r);
      const res = r.results.get(0);
      assert.deepEqual(
        res.hellos.map((h: any) => h.source).sort(),
        [1, 2, 3],
      );
      for (const h of res.hellos) {
        assert.equal(h.tag, 100 + h.source);
        assert.deepEqual(h.data, { hello: h.source });
      }
      for (let s = 1; s < size; s++) {
        assert.deepEqual(res.tag6[s], Array.from({ length: 50 }, (_, i) => `b${s}:${i}`));
        assert.deepEqual(res.tag5[s], Array.from({ length: 50 }, (_, i) => i));
      }
      // 101 messages from each sender, counted per peer.
      assert.deepEqual(res.stats.received, [0, 101, 101, 101]);
    });

    test("recv into a buffer: bytes land in it when they fit, whether posted before or after they arrive", async () => {
      const r = await runJob('into.mjs', 2, { oob });
      okStatus(r);
      // Rank 0 accepted the link (reads 'data' chunks), rank 1 connected (reads with onread).
      for (const rank of [0, 1]) {
        const res = r.results.get(rank);
        const sizes = [100, 200_000, 3 << 20];
        assert.deepEqual(res.posted, sizes.map((n) => ({ n, same: true, ok: true })), `rank ${rank}`);
        assert.deepEqual(res.early, sizes.map((n) => ({ n, same: true, ok: true })), `rank ${rank}`);
        assert.deepEqual(res.json, { json: true });
        assert.deepEqual(res.tooBig, { n: 5000, inSmall: false, ok: true });
      }
    });

    for (const size of oob === 'unix' ? [1, 5, 8] : [3]) {
      test(`collectives on ${size} ranks give the computed results`, async () => {
        const r = await runJob('collectives.mjs', size, { oob });
        okStatus(r);
        const ranks = Array.from({ length: size }, (_, i) => i);
        let float = 0;
        for (const i of ranks) float += 0.1 * (i + 1);
        const floats = new Set<number>();
        for (const rank of ranks) {
          const res = r.results.get(rank);
          assert.ok(res, `rank ${rank} printed no result`);
          assert.deepEqual(res.bcast, ranks.map((root) => ({ root, text: `from ${root}` })));
          assert.deepEqual(res.bytes, [1, 2, 3, size]);
          assert.equal(res.sum, (size * (size + 1)) / 2);
          assert.equal(res.min, 10 - (size - 1));
          assert.equal(res.max, 3 * (size - 1));
          assert.deepEqual(res.vec, [(size * (size - 1)) / 2, 0 - (size * (size - 1)) / 2 + 0, size]);
          assert.deepEqual(res.vmax, [Math.min(2, size - 1), 100]);
          assert.ok(Math.abs(res.float - float) < 1e-9);
          floats.add(res.float);
          if (rank === 0) assert.deepEqual(res.gather0, ranks.map((i) => ({ r: i, sq: i * i })));
          else assert.equal(res.gather0, undefined);
          if (rank === size - 1) assert.deepEqual(res.gatherLast, ranks.map((i) => i * 2));
        }
        // Reduce-then-broadcast: every rank holds the very same bits.
        assert.equal(floats.size, 1);
      });
    }
  });
}

test('per-peer message counters are kept and reported', async () => {
  const size = 4;
  let live: { sent: number[]; received: number[] }[] = [];
  const r = await runJob('stats.mjs', size, {
    whileRunning: async (job) => {
      await waitForJobLine(job, /^ready$/, size);
      live = await Promise.all(Array.from({ length: size }, (_, k) => job.rankStats(k)));
      job.kill('ended by the test');
    },
  });
  assert.equal(r.result.error?.code, 'ECKPT_JOB_ABORTED');
  assert.deepEqual(live[0], { sent: [0, 1, 2, 3], received: [0, 0, 0, 0] });
  for (let k = 1; k < size; k++) {
    const received = [k, 0, 0, 0];
    assert.deepEqual(live[k], { sent: [0, 0, 0, 0], received });
  }
});

test('finalize reports the counters to the coordinator', async () => {
  const r = await runJob('ring.mjs', 3, { argv: ['2'] });
  okStatus(r);
  const counters = r.job.counters();
  // Each rank sends 2 messages to its successor and receives 2 from its predecessor.
  assert.deepEqual(counters[0], { sent: [0, 2, 0], received: [0, 0, 2] });
  assert.deepEqual(counters[1], { sent: [0, 0, 2], received: [2, 0, 0] });
  assert.deepEqual(counters[2], { sent: [2, 0, 0], received: [0, 2, 0] });
});
