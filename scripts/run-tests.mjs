#!/usr/bin/env node
// Runs the compiled tests with node's test runner. Node 20 takes no globs, so the
// files are listed explicitly; a run in which no test executed fails.
// CKPT_TEST_FILTER=substr runs only the files whose path contains substr.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'test-dist');

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filter = process.env.CKPT_TEST_FILTER;
const files = find(testDir).filter((f) => !filter || relative(root, f).includes(filter));
if (files.length === 0) {
  console.error('run-tests: no test files found under test-dist/');
  process.exit(1);
}
console.log(`run-tests: ${files.length} files`);

// Tests share one machine-wide resource (CRIU, pids, namespaces): run files one at a time.
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, UV_USE_IO_URING: '0' },
});
// The runner's closing counts (ℹ tests N …), wherever they stand in the output.
const counts = {};
let partial = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  const lines = (partial + d.toString()).split('\n');
  partial = lines.pop();
  for (const line of lines) {
    const m = /^ℹ (tests|pass|fail|skipped) (\d+)$/.exec(line.trim());
    if (m) counts[m[1]] = Number(m[2]);
  }
});
child.on('exit', (code, signal) => {
  const count = (name) => counts[name] ?? 0;
  const tests = count('tests');
  const passed = count('pass');
  const failed = count('fail');
  const skipped = count('skipped');
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (tests === 0) {
    console.error('run-tests: no test ran');
    process.exit(1);
  }
  process.exit(code ?? (signal ? 1 : 0));
});
