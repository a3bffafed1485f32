#!/usr/bin/env node
// `npm run demo`: a process checkpoints itself, is killed, and is restarted from
// its snapshot — with CRIU where it works here, else with the self checkpointer.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpointers } from '../dist/crs/registry.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const ckpt = join(root, 'bin', 'ckpt');
const program = join(root, 'examples', 'counter.mjs');
const dir = mkdtempSync(join(tmpdir(), 'ckpt-demo-'));
const store = join(dir, 'store');
// Bold headings on a terminal only, and not with NO_COLOR set (no-color.org): a pipe gets plain text.
const styled = process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
const say = (text) => console.log(styled ? `\x1b[1m== ${text}\x1b[0m` : `== ${text}`);

let crs = 'self';
for (const c of checkpointers()) {
  if (c.name !== 'criu') continue;
  const a = await c.probe();
  if (a.ok) crs = 'criu';
  else console.log(`CRIU cannot run here (${a.reason}); using the self checkpointer.${a.hint ? ` To enable CRIU: ${a.hint}` : ''}`);
}
const env = { ...process.env, CKPT_CRS: crs, UV_USE_IO_URING: '0' };

try {
  say(`1. start a counter that checkpoints itself at 5 (checkpointer: ${crs})`);
  const child = spawn(process.execPath, [program, store], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      if (d.toString().includes('waiting to be killed')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the counter exited (${code}) before its checkpoint`)));
  });
  say(`2. kill it (pid ${child.pid}) with SIGKILL`);
  child.removeAllListeners('exit');
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  say('3. the snapshot it left');
  await run([ckpt, 'snapshots', 'ls', store]);
  say(`4. ckpt restart ${store}`);
  const status = await run([ckpt, 'restart', store]);
  say(status === 0 ? 'the restarted process counted on from its snapshot and finished' : `restart exited with ${status}`);
  process.exitCode = status;
} catch (err) {
  console.error(`demo failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function run(args) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('close', (code) => resolve(code ?? 1));
  });
}
