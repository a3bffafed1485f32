// A reader that stops reading (`ckpt doctor | head -1`): the command ends without a
// stack trace. The pipe's read end is closed before ckpt writes a byte, so every
// write fails with EPIPE — no race with how much head reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ckptBin } from '../helpers.js';

function withClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ckptBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

for (const args of [['--help'], ['doctor'], ['help', 'run'], ['completion', 'bash']]) {
  test(`ckpt ${args.join(' ')} into a closed pipe: no stack trace`, async () => {
    const { code, stderr } = await withClosedStdout(args);
    assert.doesNotMatch(stderr, /EPIPE|at .*\(|Unhandled/, stderr);
    assert.ok(code === 0 || code === 1, `exit ${code}`);
  });
}
