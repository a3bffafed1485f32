// CRIU through its RPC: version, feature check and kernel check, and the NOTIFY
// stages of a real dump and restore exposed as hooks (a hook can abort a dump).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { criuFeatures, criuRpcCheck, criuRpcVersion } from '../../dist/criu/client.js';
import { findCriu } from '../../dist/criu/locate/find.js';
import { checkpointProcess, listSnapshots, restartSnapshot } from '../../dist/index.js';
import { alive, fixture, needCriu, Program, tempDir } from '../helpers.js';

test('version, features and check over RPC agree with the CRIU found', async (t) => {
  if (!(await needCriu(t))) return;
  const criu = await findCriu();
  const v = await criuRpcVersion(criu.path);
  assert.deepEqual([v.major, v.minor, v.sublevel ?? 0], [criu.version.major, criu.version.minor, criu.version.sublevel]);
  const features = await criuFeatures(criu.path);
  assert.equal(typeof features.lazyPages, 'boolean');
  assert.equal(features.memTrack, false, 'no soft-dirty tracking on these kernels');
  assert.equal(await criuRpcCheck(criu.path), true);
});

test("what criu says on stderr before it answers is the error's reason; its capture file is not left behind", async (t) => {
  const dir = tempDir(t);
  const prev = process.env.CKPT_STATE_DIR;
  process.env.CKPT_STATE_DIR = join(dir, 'state');
  t.after(() => (prev === undefined ? delete process.env.CKPT_STATE_DIR : (process.env.CKPT_STATE_DIR = prev)));
  const fake = join(dir, 'criu');
  // It takes the request (fd 3: the RPC socket), says why on stderr, and leaves without an answer.
  writeFileSync(fake, '#!/bin/sh\necho "swrk: unknown option --bogus" >&2\nhead -c 1 <&3 >/dev/null\nexit 1\n');
  chmodSync(fake, 0o755);
  await assert.rejects(criuRpcVersion(fake), (err: Error) => /swrk: unknown option --bogus/.test(err.message));
  const logs = join(dir, 'state', 'logs');
  assert.ok(existsSync(logs), 'stderr went to a file in the logs directory, not a pipe');
  assert.deepEqual(readdirSync(logs), [], 'the capture file was unlinked at once');
});

test('dump and restore stages reach onNotify hooks; a hook that says no aborts the dump', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  // It ticks until told to end (the stop file): never done before the test has dumped it.
  const stop = join(tempDir(t), 'stop');
  const program = new Program(fixture('process/ticker.sh'), ['1000000', stop], {}, { session: true });
  t.after(() => program.kill());
  await program.waitFor(/^tick 3$/);

  // A refusing hook: CRIU aborts, the process runs on, nothing is listed.
  await assert.rejects(
    checkpointProcess({ pid: program.pid, dir: store, then: 'terminate', onNotify: (stage) => stage !== 'pre-dump' }),
    (err: Error & { code?: string }) => /^ECKPT_/.test(err.code ?? ''),
  );
  assert.ok(alive(program.pid), 'the process was not killed');
  let listed: number[] = [];
  try {
    listed = listSnapshots(store).map((s) => s.seq);
  } catch {
    // the aborted first snapshot took its new store with it
  }
  assert.deepEqual(listed, []);

  const dumpStages: string[] = [];
  await checkpointProcess({ pid: program.pid, dir: store, then: 'terminate', onNotify: (stage) => void dumpStages.push(stage) });
  assert.ok(dumpStages.includes('pre-dump') && dumpStages.includes('post-dump'), dumpStages.join(','));
  await program.exited;

  const restoreStages: string[] = [];
  // Detached, its output to a file: the test's own stdout belongs to the test runner.
  const log = join(tempDir(t), 'out.log');
  const { process: restored } = await restartSnapshot(store, { detach: true, logFile: log, onNotify: (stage) => void restoreStages.push(stage) });
  assert.ok(restoreStages.includes('pre-restore') && restoreStages.includes('post-restore'), restoreStages.join(','));
  writeFileSync(stop, '');
  await restored.wait();
  assert.equal(readFileSync(log, 'utf8').trim().split('\n').at(-1), 'done');
});
