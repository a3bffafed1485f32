#!/usr/bin/env node
// The package's install script: builds the optional native addon (build/Release) with
// node-gyp when a toolchain is there, and never fails the install when it cannot:
// `self` and `none` checkpoints, checksums (WebAssembly fallback) and every other
// non-CRIU feature work without it; only CRIU needs it. One line says what happened.
//
// CKPT_NATIVE_REQUIRED=1 makes a failed build fail (CI, which tests CRIU).
// CKPT_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const required = process.env.CKPT_NATIVE_REQUIRED === '1';
const say = (m) => process.stderr.write(`ckpt: ${m}\n`);

function onPath(name) {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {}
  }
  return undefined;
}

function skip(why) {
  const m = `native addon not built (${why}): self checkpoints, checksums and everything but CRIU work without it; to build it later: npm rebuild ckpt (pnpm: pnpm approve-builds, then pnpm rebuild ckpt)`;
  if (required) {
    say(m);
    process.exit(1);
  }
  say(m);
  process.exit(0);
}

if (process.env.CKPT_SKIP_NATIVE === '1') skip('CKPT_SKIP_NATIVE=1');
const compiler = process.env.CC ? onPath(process.env.CC.split(' ')[0]) ?? (existsSync(process.env.CC) ? process.env.CC : undefined) : onPath('cc') ?? onPath('gcc') ?? onPath('clang');
const missing = [!compiler && 'C compiler', !onPath('make') && 'make', !onPath('python3') && !onPath('python') && 'python3'].filter(Boolean);
if (missing.length > 0) skip(`no ${missing.join(', no ')} on PATH`);

// node-gyp: the one npm runs scripts with, else the one on PATH, else npm's own.
let gyp;
if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) gyp = [process.execPath, process.env.npm_config_node_gyp];
else if (onPath('node-gyp')) gyp = [onPath('node-gyp')];
else if (process.env.npm_execpath) {
  const bundled = join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) gyp = [process.execPath, bundled];
}
if (!gyp) skip('node-gyp not found');

// Build against the installed Node headers when they are there: nothing is downloaded.
const env = { ...process.env };
if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';

const r = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild'], { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
if (r.status === 0 && existsSync(join(root, 'build', 'Release', 'ckpt_native.node'))) {
  if (required || process.env.npm_config_foreground_scripts === 'true') say('native addon built');
  process.exit(0);
}
let logFile = '';
try {
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(join(root, 'build', 'native-build.log'), log);
  logFile = `; log: ${join(root, 'build', 'native-build.log')}`;
} catch {}
const last = log.split('\n').map((l) => l.trim()).filter((l) => /error/i.test(l)).at(0) ?? (r.error ? r.error.message : `node-gyp exited with ${r.status ?? r.signal}`);
if (required) process.stderr.write(log);
skip(`the build failed: ${last.slice(0, 160)}${logFile}`);
