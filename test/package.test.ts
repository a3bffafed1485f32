// What `npm pack` ships (issue #15.8): the bundle ckpt runs from (bin/ckpt, the
// exports, the node agent, ckpt-self), the typings, the LICENSE; no source maps (they
// would point at ../src, which is not shipped), no tsc output, no test tooling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './helpers.js';

test('the package holds the bundle, typings and LICENSE, and no maps, tsc output or test runner', () => {
  const npm = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  // --ignore-scripts: list the checkout's build as the test run made it (prepare would rebuild it).
  const packed = execFileSync(process.execPath, [npm, 'pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  const files: string[] = (JSON.parse(packed) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    exports: Record<string, { types: string; default: string }>;
  };

  assert.ok(files.includes('LICENSE'), 'LICENSE is shipped');
  assert.deepEqual(files.filter((f) => f.endsWith('.map')), [], 'no source maps');
  assert.deepEqual(files.filter((f) => /^(test|test-dist|src|bench)\//.test(f) || f === 'scripts/run-tests.mjs'), [], 'no tests, sources or test runner');
  assert.deepEqual(files.filter((f) => f.startsWith('dist/') && !f.startsWith('dist/bundle/') && !f.startsWith('dist/types/')), [], "no tsc output: ckpt runs from the bundle");
  assert.deepEqual(files.filter((f) => f.startsWith('dist/types/') && !f.endsWith('.d.ts')), [], 'typings only under dist/types');
  for (const file of ['bin/ckpt', 'bin/package.json', 'dist/bundle/cli/main.cjs', 'dist/bundle/agent/main.cjs', 'scripts/build-native.mjs']) assert.ok(files.includes(file), `${file} is shipped`);
  for (const file of Object.values(pkg.bin)) assert.ok(files.includes(file), `bin ${file} is shipped`);
  for (const [name, entry] of Object.entries(pkg.exports)) {
    assert.ok(files.includes(entry.default.replace(/^\.\//, '')), `export ${name} (${entry.default}) is shipped`);
    assert.ok(files.includes(entry.types.replace(/^\.\//, '')), `types of ${name} (${entry.types}) are shipped`);
  }
  assert.ok(files.some((f) => f.startsWith('dist/bundle/chunks/')), 'the lazily loaded chunks are shipped');
});
