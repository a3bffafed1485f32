// Node's debugger port opened by a SIGUSR1 during start-up: kept off HTTP discovery in
// the Node processes ckpt starts, closed when nobody asked for it. Real Node processes.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { inspectorRequested, withUnpublishedInspector } from '../../dist/util/inspector.js';

const run = promisify(execFile);
const moduleUrl = pathToFileURL(join(import.meta.dirname, '../../dist/util/inspector.js')).href;

/** A Node process that a SIGUSR1 reaches before it has a listener; it then runs closeStrayInspector(). */
async function strayInspector(nodeArgs: string[]): Promise<{ closed: boolean; openAfter: boolean }> {
  const script = `
    import inspector from 'node:inspector';
    import { closeStrayInspector } from ${JSON.stringify(moduleUrl)};
    if (inspector.url() === undefined) {
      process.kill(process.pid, 'SIGUSR1');
      while (inspector.url() === undefined) await new Promise((r) => setImmediate(r));
    }
    const closed = await closeStrayInspector();
    console.log(JSON.stringify({ closed, openAfter: inspector.url() !== undefined }));
    inspector.close();`;
  const { stdout } = await run(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(stdout);
}

test('NODE_OPTIONS for a rank: the URL kept off HTTP, the user\'s own options and choice kept', () => {
  assert.equal(withUnpublishedInspector(undefined), '--inspect-publish-uid=stderr');
  assert.equal(withUnpublishedInspector('  '), '--inspect-publish-uid=stderr');
  assert.equal(withUnpublishedInspector('--max-old-space-size=64'), '--max-old-space-size=64 --inspect-publish-uid=stderr');
  assert.equal(withUnpublishedInspector('--inspect-publish-uid=http'), '--inspect-publish-uid=http');
  assert.equal(withUnpublishedInspector(withUnpublishedInspector(undefined)), '--inspect-publish-uid=stderr');
});

test('a debugger the user asked for is one ckpt leaves alone', () => {
  assert.equal(inspectorRequested(['--inspect'], undefined), true);
  assert.equal(inspectorRequested(['--inspect-brk=0'], undefined), true);
  assert.equal(inspectorRequested([], '--max-old-space-size=64 --inspect-wait=127.0.0.1:0'), true);
  assert.equal(inspectorRequested(['--inspect-port=0'], '--inspect-publish-uid=stderr'), false);
  assert.equal(inspectorRequested([], undefined), false);
});

test('closeStrayInspector closes a port a SIGUSR1 opened, not one the process was started with', async () => {
  assert.deepEqual(await strayInspector(['--inspect-port=0']), { closed: true, openAfter: false });
  assert.deepEqual(await strayInspector(['--inspect=127.0.0.1:0']), { closed: false, openAfter: true });
});
