// ckpt as a new user gets it: `npm pack`, then installed into a fresh project with no
// C compiler on PATH. With --ignore-scripts (pnpm's default) and with the install
// script (which then builds nothing and says so), the install succeeds; a `self`
// program checkpoints itself, is killed and restarts; the checksums (WebAssembly)
// equal the native addon's on the same files; `ckpt doctor` says what to run; and
// `npm rebuild ckpt` with a compiler builds the addon after all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeXxh64 } from '../../dist/store/checksum.js';
import { Program, root, tempDir } from '../helpers.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) =>
    execFile(command, args, { cwd, env, maxBuffer: 16 << 20, timeout: 300_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** npm's own CLI script (run with node: no shell, no PATH lookup). */
function npmCli(): string {
  return realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
}

/** A PATH holding node and sh (npm runs scripts with it) and nothing else: no cc, gcc, make or python. */
function bareBin(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  return bin;
}

function freshProject(dir: string, name: string): string {
  const project = join(dir, name);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }));
  return project;
}

test('the packed tarball installs and self checkpoints work with no compiler and no build step', { timeout: 600_000 }, async (t) => {
  const dir = tempDir(t, 'ckpt-pack-');
  const npm = npmCli();
  // The checkout's dist/ is built by the test run; no scripts (prepare would rebuild it).
  const packed = execFileSync(process.execPath, [npm, 'pack', '--ignore-scripts', '--pack-destination', dir, '--json'], { cwd: root, encoding: 'utf8' });
  const tgz = join(dir, JSON.parse(packed)[0].filename as string);
  const listed: string[] = JSON.parse(packed)[0].files.map((f: { path: string }) => f.path);
  assert.ok(listed.includes('scripts/build-native.mjs') && listed.includes('dist/bundle/store/checksum.js'), 'the package holds its build wrapper and the bundle');
  assert.ok(!listed.some((p) => p.startsWith('build/')), 'no prebuilt addon is shipped');

  const bin = bareBin(dir);
  const env = { ...process.env, PATH: bin, CKPT_CRS: '', CKPT_NO_NATIVE: '' };
  assert.notEqual((await run('/bin/sh', ['-c', 'command -v cc || command -v gcc || command -v make'], dir, env)).code, 0, 'no compiler on the test PATH');
  const npmArgs = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

  // 1. --ignore-scripts: nothing is built.
  const project = freshProject(dir, 'fresh');
  const install = await run(process.execPath, [npm, 'install', '--ignore-scripts', ...npmArgs, tgz], project, env);
  assert.equal(install.code, 0, `npm install --ignore-scripts failed: ${install.stderr}`);
  const pkg = join(project, 'node_modules', 'ckpt');
  assert.equal(existsSync(join(pkg, 'build')), false);
  const ckptBin = join(project, 'node_modules', '.bin', 'ckpt');
  const versioned = await run(process.execPath, [ckptBin, '--version'], project, env);
  assert.equal(versioned.stdout, `ckpt ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}\n`, versioned.stderr);
  const helped = await run(process.execPath, [ckptBin, '--help'], project, env);
  assert.equal(helped.code, 0, helped.stderr);
  assert.match(helped.stdout, /^usage: ckpt COMMAND/);
  assert.ok(existsSync(join(project, 'node_modules', '.bin', 'ckpt-self')), 'the self-protocol launcher is installed as a bin');
  assert.equal(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).dependencies['xxhash-wasm'], '1.1.0');
  assert.ok(existsSync(join(project, 'node_modules', 'xxhash-wasm')), 'the fallback is a runtime dependency');

  // A self program: checkpoint, kill, restart, exact output.
  copyFileSync(join(root, 'examples', 'counter.mjs'), join(project, 'counter.mjs'));
  const store = join(project, 'snaps');
  const original = new Program(process.execPath, ['counter.mjs', store], env, { cwd: project, session: true });
  t.after(() => original.kill());
  await original.waitFor(/^waiting to be killed/);
  assert.deepEqual(original.lines, ['count 1', 'count 2', 'count 3', 'count 4', 'count 5', "checkpoint() returned 'continue' (self, snapshot 1) at counter 5", 'waiting to be killed…']);
  await original.kill('SIGKILL');
  const restarted = new Program(process.execPath, [ckptBin, 'restart', store], env, { cwd: project, session: true });
  t.after(() => restarted.kill());
  const exit = await restarted.exited;
  assert.equal(exit.code, 0, restarted.stderr);
  assert.match(restarted.lines[0]!, new RegExp(`^  \\(restart hook: pid ${original.pid} → \\d+ on `));
  assert.deepEqual(restarted.lines.slice(1), [
    "checkpoint() returned 'restart' (self, snapshot 1) at counter 5",
    'count 6', 'count 7', 'count 8', 'count 9', 'count 10', 'done',
  ]);
  const verify = await run(process.execPath, [ckptBin, 'snapshots', 'verify', store], project, env);
  assert.equal(verify.code, 0, verify.stderr);

  // Checksums: the installed package (WebAssembly) and this checkout's native addon agree,
  // on generated files and on the snapshot's own.
  const files = [join(store, '000001', 'state.json'), join(store, '000001', 'manifest.json')];
  for (const n of [0, 5, 32, 1000, (1 << 20) + 3, (3 << 20) + 77]) {
    const f = join(dir, `data-${n}`);
    writeFileSync(f, Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 11)) & 255)));
    files.push(f);
  }
  const hashScript = `import { hashFile, checksumBackend } from 'ckpt/dist/bundle/store/checksum.js';
    const out = []; for (const f of JSON.parse(process.argv[2])) out.push(await hashFile(f));
    console.log(JSON.stringify({ backend: checksumBackend().backend, sums: out }));`;
  writeFileSync(join(project, 'hash.mjs'), hashScript.replace("'ckpt/dist/bundle/store/checksum.js'", JSON.stringify(join(pkg, 'dist', 'bundle', 'store', 'checksum.js'))));
  const hashed = await run(process.execPath, ['hash.mjs', JSON.stringify(files)], project, env);
  assert.equal(hashed.code, 0, hashed.stderr);
  const { backend, sums } = JSON.parse(hashed.stdout);
  assert.equal(backend, 'wasm');
  const native: string[] = [];
  for (const f of files) native.push(await nativeXxh64(f));
  assert.deepEqual(sums, native);
  const manifest = JSON.parse(readFileSync(join(store, '000001', 'manifest.json'), 'utf8'));
  assert.equal(manifest.files[0].xxh64, native[0], "the manifest's entry is the native digest");

  // doctor: what is missing, what is lost, what to run as a dependency.
  const doctor = await run(process.execPath, [ckptBin, 'doctor'], project, env);
  assert.equal(doctor.code, 0, doctor.stderr);
  assert.match(doctor.stdout, /^native addon: unavailable: the native addon is not built; checksums: WebAssembly/m);
  assert.match(doctor.stdout, /→ run `npm rebuild ckpt` in your project .*pnpm approve-builds/);

  // 2. With the install script, still no compiler: the install succeeds, one line says why nothing was built.
  const wrapper = await run(process.execPath, [join(pkg, 'scripts', 'build-native.mjs')], pkg, env);
  assert.equal(wrapper.code, 0);
  assert.match(wrapper.stderr, /^ckpt: native addon not built \(no C compiler, no make, no python3 on PATH\): .*npm rebuild ckpt.*\n$/);
  assert.equal(wrapper.stderr.trim().split('\n').length, 1);
  const scripted = freshProject(dir, 'scripted');
  const install2 = await run(process.execPath, [npm, 'install', ...npmArgs, tgz], scripted, env);
  assert.equal(install2.code, 0, `npm install (scripts on, no compiler) failed: ${install2.stderr}`);
  assert.doesNotMatch(install2.stderr, /gyp|Traceback/);
  assert.equal(existsSync(join(scripted, 'node_modules', 'ckpt', 'build', 'Release', 'ckpt_native.node')), false);

  // 3. With a compiler, `npm rebuild ckpt` (the hint) builds the addon.
  const rebuild = await run(process.execPath, [npm, 'rebuild', 'ckpt', '--loglevel=error'], project, { ...process.env, PATH: `${bin}:${process.env.PATH}` });
  assert.equal(rebuild.code, 0, rebuild.stderr);
  assert.deepEqual(readdirSync(join(pkg, 'build', 'Release')).filter((f) => f.endsWith('.node')).sort(), ['ckpt_hash.node', 'ckpt_native.node']);
  const after = await run(process.execPath, ['hash.mjs', JSON.stringify(files)], project, env);
  assert.deepEqual(JSON.parse(after.stdout), { backend: 'native', sums: native });
});
