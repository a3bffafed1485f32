#!/usr/bin/env node
// Runs the compiled tests with node's test runner (spec reporter), one file at a
// time: tests share machine-wide resources (CRIU, pids, namespaces), and a file's
// wall time is printed after it, the total at the end. Node 20 takes no globs, so
// the files are listed explicitly; a run in which no test executed fails.
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

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** Runs one file; resolves with the runner's closing counts (ℹ tests N …) and its exit status. */
function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', file], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, UV_USE_IO_URING: '0' },
    });
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
    child.on('exit', (code, signal) => resolve({ counts, status: code ?? (signal ? 1 : 0) }));
  });
}

const total = { tests: 0, pass: 0, fail: 0, skipped: 0 };
const times = [];
let status = 0;
const t0 = Date.now();
for (const file of files) {
  const name = relative(testDir, file);
  console.log(`\nrun-tests: ${name}`);
  const start = Date.now();
  const { counts, status: s } = await runFile(file);
  const ms = Date.now() - start;
  times.push([name, ms, s]);
  for (const k of Object.keys(total)) total[k] += counts[k] ?? 0;
  if (s !== 0) status = s;
  console.log(`run-tests: ${name}: ${seconds(ms)}${s !== 0 ? ` (exit status ${s})` : ''}`);
}
console.log('\nrun-tests: wall time per file');
const width = Math.max(...times.map(([n]) => n.length));
for (const [name, ms, s] of times) console.log(`  ${name.padEnd(width)}  ${seconds(ms).padStart(8)}${s !== 0 ? '  FAILED' : ''}`);
console.log(`  ${'total'.padEnd(width)}  ${seconds(Date.now() - t0).padStart(8)}`);
console.log(`${total.pass} passed, ${total.fail} failed, ${total.skipped} skipped`);
if (total.tests === 0) {
  console.error('run-tests: no test ran');
  process.exit(1);
}
process.exit(status);
