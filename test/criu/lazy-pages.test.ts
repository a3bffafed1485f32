// Starting CRIU's lazy-pages daemon (src/crs/criu/lazy-pages.ts), with stand-ins for
// `criu lazy-pages` that never listen, fail at once, or listen: ckpt waits for the
// socket by watching the work directory, bounded, and leaves no daemon and no socket
// behind when it gives up. (The real daemon: test/process/lazy-restart.test.ts.)
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LazyPagesDaemon } from '../../dist/crs/criu/lazy-pages.js';
import { alive, eventually, tempDir } from '../helpers.js';

/** A stand-in for criu: `criu lazy-pages -D IMAGES --work-dir WD …` runs `body` with WD as $5. */
function fakeCriu(t: TestContext, body: string): string {
  const file = join(tempDir(t), 'criu');
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function processesNaming(text: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        return readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(text) && alive(Number(n));
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('a daemon that never listens: a clear error within the bound, the daemon killed', async (t) => {
  const work = tempDir(t, 'ckpt-lazy-work-');
  // The shell itself waits (its command line names the work directory).
  const criu = fakeCriu(t, 'while :; do sleep 1; done');
  await assert.rejects(LazyPagesDaemon.start(criu, '/nonexistent/images', work, 300), (err: Error & { code?: string; hint?: string }) => {
    assert.match(err.message, /lazy-pages daemon did not listen within 300 ms/);
    assert.equal(err.code, 'ECKPT_CRIU_FAILED');
    assert.match(err.hint ?? '', /restart without --lazy/);
    return true;
  });
  assert.deepEqual(processesNaming(work), [], 'no daemon left');
});

test('a daemon that fails at once: its own error line, no waiting for the bound', async (t) => {
  const work = tempDir(t, 'ckpt-lazy-work-');
  const criu = fakeCriu(t, `printf 'Error (criu/uffd.c:1): cannot read the images\\n' > "$5/lazy-pages.log"; exit 3`);
  const started = Date.now();
  await assert.rejects(LazyPagesDaemon.start(criu, '/nonexistent/images', work, 60_000), /exited \(status 3\) before it listened: cannot read the images/);
  assert.ok(Date.now() - started < 30_000, 'its exit ended the wait');
});

test('a daemon that listens: start resolves once its socket is there; stop kills it and removes the socket', async (t) => {
  const work = tempDir(t, 'ckpt-lazy-work-');
  const server = join(tempDir(t), 'listen.cjs');
  writeFileSync(server, "require('node:net').createServer().listen(require('node:path').join(process.argv[2], 'lazy-pages.socket'));\n");
  const criu = fakeCriu(t, `exec "${process.execPath}" "${server}" "$5"`);
  const daemon = await LazyPagesDaemon.start(criu, '/nonexistent/images', work);
  assert.ok(daemon.pid > 1 && alive(daemon.pid));
  assert.ok(existsSync(join(work, 'lazy-pages.socket')));
  await daemon.stop();
  assert.ok(await eventually(() => !alive(daemon.pid), 10_000), 'killed');
  assert.ok(!existsSync(join(work, 'lazy-pages.socket')), 'its socket removed');
});
