#!/usr/bin/env node
// Whole CLI commands as a user times them (issue #16): wall clock from exec to exit,
// beside baselines measured in the same run, interleaved, on the same targets.
//   node bench/cli.mjs [--reps N] [--big-reps N] [--targets tiny,1g,node,ring] [--base PATH/bin/ckpt] [--no-start] [--json]
//
//   start:    node -e 0 | ckpt --version | ckpt run -n 1 -- node -e 0 | dmtcp_launch node -e 0
//   per target (a tiny C loop, C with 1 GiB touched, Node at ~170 MB RSS, a 4-process
//   C ring whose launcher is given as --pid):
//     criu:   criu dump -t PID -D DIR (kills), then sync; criu restore -D DIR --restore-detached
//     ckpt:   ckpt checkpoint --pid PID --kill --dir STORE; ckpt restart STORE --detach
//     ckpt --lazy (1g, node): the same, restarted with --lazy (post-copy: CRIU's lazy-pages
//             daemon copies the memory in after the process runs; waited for before the next round)
//     both ckpt variants also report restart→line: from exec of ckpt restart until the
//     target prints its next line (with --lazy, part of the copying comes after that)
//     dmtcp:  (when DMTCP_HOME is set) the target runs under dmtcp_launch; dmtcp_command -bc,
//             then -k; dmtcp_restart, timed until the restarted target prints its next line
//             (DMTCP's -bc leaves the target running: it goes on from its checkpoint's line)
// Every restart is checked to continue exactly: the target's output file (lines
// 1, 2, 3, … written with a 5 ms pause) must stay consecutive across the restart.
// --base runs a second ckpt (e.g. an older checkout) as one more variant.
// Needs root and CRIU (`ckpt setup criu`), gcc, and `npm run build` (dist/bundle).
// Not a test: figures depend on the machine; read the ratios, measured side by side.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const REPS = Number(arg('--reps') ?? 5);
/** The 1 GiB target: fewer rounds (each writes 1 GiB of images per variant). */
const BIG_REPS = Number(arg('--big-reps') ?? Math.min(REPS, 3));
const TARGETS = (arg('--targets') ?? 'tiny,1g,node,ring').split(',');
const JSON_OUT = process.argv.includes('--json');
/** Targets also restarted with `ckpt restart --lazy`. */
const LAZY_TARGETS = ['1g', 'node'];
const log = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);
const root = fileURLToPath(new URL('..', import.meta.url));
const CKPT = { ckpt: join(root, 'bin', 'ckpt'), ...(arg('--base') ? { base: arg('--base') } : {}) };
const DMTCP = process.env.DMTCP_HOME ? join(process.env.DMTCP_HOME, 'bin') : undefined;
if (process.geteuid?.() !== 0) {
  console.error('bench/cli.mjs: CRIU needs root; run as root');
  process.exit(2);
}
const CRIU = ['/opt/ckpt/criu/current/usr/sbin/criu', process.env.CKPT_CRIU].find((p) => p && existsSync(p));
if (!CRIU) {
  console.error('bench/cli.mjs: no CRIU (run `bin/ckpt setup criu`)');
  process.exit(2);
}
const WORK = mkdtempSync(join(tmpdir(), 'ckpt-bench-cli-'));
const live = new Set(); // process groups (targets, restored trees) we started

function killGroup(pid) {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`refusing to signal pid ${pid}`);
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  live.delete(pid);
}
function cleanup() {
  for (const pid of live) killGroup(pid);
  rmSync(WORK, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

/** Runs a command to completion; its wall time in ms. Fails the bench on a non-zero exit. */
function timed(argv, env = {}, out = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  out.stdout = r.stdout;
  out.started = t0;
  return ms;
}

// ---- targets ------------------------------------------------------------------------
const C_LOOP = `static void loop(void){ for(unsigned long i=1;;i++){ printf("%lu\\n",i); fflush(stdout); usleep(5000);} }`;
const C = {
  tiny: `#include <stdio.h>\n#include <unistd.h>\n${C_LOOP}\nint main(void){ loop(); }`,
  big: `#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n${C_LOOP}
int main(void){ size_t n=1UL<<30; unsigned char *m=malloc(n); for(size_t i=0;i<n;i+=4096) m[i]=(unsigned char)(i>>12)|1; loop(); }`,
  // Four processes pass a token around pipes; the first prints one line per round.
  ring: `#include <stdio.h>\n#include <unistd.h>
int main(void){ int p[4][2]; for(int k=0;k<4;k++) pipe(p[k]); int me=0;
  for(int k=1;k<4;k++) if(fork()==0){ me=k; break; }
  unsigned long t=0; if(me==0){ t=1; write(p[1][1],&t,sizeof t); }
  for(;;){ read(p[me][0],&t,sizeof t); if(me==0){ printf("%lu\\n",t); fflush(stdout); usleep(5000); t++; } write(p[(me+1)%4][1],&t,sizeof t); } }`,
};
const NODE_TARGET = `const keep=[]; for(let i=0;i<130;i++) keep.push(Buffer.alloc(1<<20,i+1)); let i=1; setInterval(()=>process.stdout.write(\`\${i++}\\n\`),5);`;
const bins = {};
for (const [name, src] of Object.entries(C)) {
  writeFileSync(join(WORK, `${name}.c`), src);
  const r = spawnSync('gcc', ['-O1', '-o', join(WORK, name), join(WORK, `${name}.c`)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc ${name}: ${r.stderr}`);
  bins[name] = join(WORK, name);
}
const targetArgv = { tiny: [bins.tiny], '1g': [bins.big], ring: [bins.ring], node: [process.execPath, '-e', NODE_TARGET] };
const targetLabel = { tiny: 'tiny C loop', '1g': 'C, 1 GiB touched', node: 'Node, ~170 MB RSS', ring: '4-process C ring' };

let runs = 0;
/** Starts a target in its own session writing lines to a file; resolves once it prints. */
async function startTarget(kind, prefix = []) {
  const out = join(WORK, `out-${++runs}`);
  const argv = [...prefix, ...targetArgv[kind]];
  // A plain O_APPEND descriptor (CRIU and DMTCP restore it by path); own session and group.
  const fd = openSync(out, 'a');
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', fd, 'ignore'], env: { ...process.env, UV_USE_IO_URING: '0' } });
  closeSync(fd);
  child.unref();
  live.add(child.pid);
  await waitLines(out, 3, 120_000);
  return { pid: child.pid, out };
}

function lines(file) {
  const text = readFileSync(file, 'utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map(Number);
}
async function waitLines(file, n, deadlineMs, after = 0) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const l = lines(file);
    if (l.length >= n && (l.at(-1) ?? 0) > after) return l;
    if (Date.now() > end) throw new Error(`${file}: no output (${l.length} lines)`);
    await sleep(2);
  }
}
/** The target's session is gone and reaped (a zombie still holds its pid, which the restore needs). */
function gone(sid) {
  if (existsSync(`/proc/${sid}`)) return false;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[3]) === sid) return false;
    } catch {
      // gone meanwhile
    }
  }
  return true;
}
async function waitGone(pid) {
  for (let i = 0; i < 5000 && !gone(pid); i++) await sleep(2);
}
/** The restarted target continued exactly: its lines are 1, 2, 3, … with none lost or repeated. */
async function checkContinues(out, before) {
  const l = await waitLines(out, before + 2, 60_000, before);
  const bad = l.findIndex((v, i) => v !== i + 1);
  if (bad >= 0) throw new Error(`${out}: not continued exactly: line ${bad + 1} is ${l[bad]} (last before the checkpoint: ${before})`);
}

// ---- the variants -------------------------------------------------------------------
let ports = 0;
/** A fresh port for each DMTCP coordinator (one per computation: --new-coordinator). */
const dmtcpPort = () => 20000 + ((process.pid * 7 + ++ports * 13) % 20000);

async function criuRound(kind, sample) {
  const t = await startTarget(kind);
  const dir = join(WORK, `img-${runs}`);
  mkdirSync(dir);
  sample.dump = timed([CRIU, 'dump', '-t', String(t.pid), '-D', dir, '-o', 'dump.log']);
  sample.sync = timed(['sync']);
  const before = lines(t.out).length;
  await waitGone(t.pid);
  sample.restore = timed([CRIU, 'restore', '-D', dir, '--restore-detached', '-o', 'restore.log']);
  live.add(t.pid);
  await checkContinues(t.out, before);
  killGroup(t.pid);
  rmSync(dir, { recursive: true, force: true });
}

async function ckptRound(bin, kind, sample, lazy = false) {
  const t = await startTarget(kind);
  const store = join(WORK, `store-${runs}`);
  sample.checkpoint = timed([process.execPath, bin, 'checkpoint', '--pid', String(t.pid), '--kill', '--dir', store]);
  const before = lines(t.out).length;
  await waitGone(t.pid);
  const run = {};
  sample.restart = timed([process.execPath, bin, 'restart', store, '--detach', '--json', ...(lazy ? ['--lazy'] : [])], {}, run);
  live.add(t.pid);
  await waitLines(t.out, before + 1, 60_000, before);
  sample['restart→line'] = Number(process.hrtime.bigint() - run.started) / 1e6;
  await checkContinues(t.out, before);
  killGroup(t.pid);
  // The lazy-pages daemon ends once every page is in or the process is gone: not in the next round.
  const daemon = lazy ? JSON.parse(run.stdout).lazyPages?.pid : undefined;
  if (daemon > 1) await waitGone(daemon);
  rmSync(store, { recursive: true, force: true });
}

async function dmtcpRound(kind, sample) {
  const port = String(dmtcpPort());
  const dir = join(WORK, `dmtcp-${runs}`);
  mkdirSync(dir);
  const coord = ['--coord-port', port];
  const t = await startTarget(kind, [join(DMTCP, 'dmtcp_launch'), '--new-coordinator', ...coord, '--ckptdir', dir, '--no-gzip']);
  // DMTCP's target runs on after `-bc` until `-k`: it restarts from some line c printed
  // during the checkpoint, and must go on with c + 1, c + 2, … after what was printed since.
  const first = lines(t.out).length;
  sample.checkpoint = timed([join(DMTCP, 'dmtcp_command'), ...coord, '-bc']);
  const last = lines(t.out).length;
  timed([join(DMTCP, 'dmtcp_command'), ...coord, '-k']);
  await waitGone(t.pid);
  const printed = lines(t.out).length;
  const images = readdirSync(dir).filter((f) => f.endsWith('.dmtcp')).map((f) => join(dir, f));
  const t0 = process.hrtime.bigint();
  // DMTCP gives the restarted process the restarter's stdio: the same output file.
  const fd = openSync(t.out, 'a');
  const child = spawn(join(DMTCP, 'dmtcp_restart'), ['--new-coordinator', ...coord, ...images], { detached: true, stdio: ['ignore', fd, 'ignore'] });
  closeSync(fd);
  child.unref();
  live.add(child.pid);
  // Timed until the restarted target prints (dmtcp_restart becomes it: it does not return).
  for (const end = Date.now() + 60_000; lines(t.out).length <= printed; await sleep(1)) {
    if (Date.now() > end) throw new Error(`${t.out}: the target restarted by DMTCP prints nothing`);
  }
  sample.restart = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = (await waitLines(t.out, printed + 3, 60_000)).slice(printed);
  const c = after[0] - 1;
  if (!(c >= first && c <= last) || after.some((v, i) => v !== after[0] + i)) {
    throw new Error(`${t.out}: DMTCP did not continue from its checkpoint: ${after.join(',')} after lines ${first}…${last} at the checkpoint`);
  }
  spawnSync(join(DMTCP, 'dmtcp_command'), [...coord, '-k'], { stdio: 'ignore' });
  killGroup(child.pid);
  rmSync(dir, { recursive: true, force: true });
}

// ---- running and reporting ----------------------------------------------------------
const results = {}; // "group/variant" → { metric: [ms…] }
function record(key, sample) {
  results[key] ??= {};
  for (const [m, v] of Object.entries(sample)) (results[key][m] ??= []).push(v);
}
const stats = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return { median: s[s.length >> 1], min: s[0], max: s.at(-1), n: s.length };
};
const rotate = (list, by) => list.map((_, i) => list[(i + by) % list.length]);

const load0 = loadavg();
const started = Date.now();
if (!process.argv.includes('--no-start')) {
  log(`start: ${REPS * 3} rounds`);
  const variants = [
    ['node -e 0', () => timed([process.execPath, '-e', '0'])],
    ...Object.entries(CKPT).flatMap(([name, bin]) => [
      [`${name} --version`, () => timed([process.execPath, bin, '--version'])],
      [`${name} run -n 1 -- node -e 0`, () => timed([process.execPath, bin, 'run', '-n', '1', '--', process.execPath, '-e', '0'])],
    ]),
    ...(DMTCP ? [['dmtcp_launch node -e 0', () => timed([join(DMTCP, 'dmtcp_launch'), '--new-coordinator', '--coord-port', String(dmtcpPort()), process.execPath, '-e', '0'])]] : []),
  ];
  for (let r = 0; r < REPS * 3; r++) for (const [name, fn] of rotate(variants, r)) record(`start/${name}`, { wall: fn() });
}
for (const kind of TARGETS) {
  const reps = kind === '1g' ? BIG_REPS : REPS;
  log(`${targetLabel[kind]}: ${reps} rounds`);
  const variants = [
    ['criu', (s) => criuRound(kind, s)],
    ...Object.entries(CKPT).map(([name, bin]) => [name, (s) => ckptRound(bin, kind, s)]),
    // Post-copy where the memory is big enough for it to matter.
    ...(LAZY_TARGETS.includes(kind) ? [['ckpt --lazy', (s) => ckptRound(CKPT.ckpt, kind, s, true)]] : []),
    ...(DMTCP ? [['dmtcp', (s) => dmtcpRound(kind, s)]] : []),
  ];
  for (let r = 0; r < reps; r++) {
    for (const [name, fn] of rotate(variants, r)) {
      const sample = {};
      await fn(sample);
      if (sample.dump !== undefined) sample['dump+sync'] = sample.dump + sample.sync;
      record(`${kind}/${name}`, sample);
    }
  }
}

const table = Object.fromEntries(Object.entries(results).map(([k, m]) => [k, Object.fromEntries(Object.entries(m).map(([n, a]) => [n, stats(a)]))]));
const med = (key, metric) => table[key]?.[metric]?.median;
const ratios = {};
const ratio = (name, a, b) => {
  if (a !== undefined && b !== undefined) ratios[name] = Number((a / b).toFixed(2));
};
const nodeStart = med('start/node -e 0', 'wall');
for (const name of Object.keys(CKPT)) {
  if (med(`start/${name} --version`, 'wall') !== undefined) ratios[`${name} --version − node -e 0 (ms)`] = Number((med(`start/${name} --version`, 'wall') - nodeStart).toFixed(1));
  ratio(`${name} run -n 1 / node -e 0`, med(`start/${name} run -n 1 -- node -e 0`, 'wall'), nodeStart);
  for (const kind of TARGETS) {
    ratio(`${kind}: ${name} checkpoint / criu dump+sync`, med(`${kind}/${name}`, 'checkpoint'), med(`${kind}/criu`, 'dump+sync'));
    if (kind === 'tiny' && nodeStart !== undefined) ratios[`tiny: ${name} checkpoint − (criu dump + node -e 0) (ms)`] = Number((med(`tiny/${name}`, 'checkpoint') - med('tiny/criu', 'dump') - nodeStart).toFixed(1));
    ratio(`${kind}: ${name} restart / criu restore`, med(`${kind}/${name}`, 'restart'), med(`${kind}/criu`, 'restore'));
    if (name === 'ckpt' && LAZY_TARGETS.includes(kind)) {
      ratio(`${kind}: ckpt restart --lazy / ckpt restart`, med(`${kind}/ckpt --lazy`, 'restart'), med(`${kind}/ckpt`, 'restart'));
      ratio(`${kind}: ckpt restart --lazy / criu restore`, med(`${kind}/ckpt --lazy`, 'restart'), med(`${kind}/criu`, 'restore'));
    }
    ratio(`${kind}: ${name} checkpoint / dmtcp -bc`, med(`${kind}/${name}`, 'checkpoint'), med(`${kind}/dmtcp`, 'checkpoint'));
    ratio(`${kind}: ${name} restart / dmtcp_restart`, med(`${kind}/${name}`, 'restart'), med(`${kind}/dmtcp`, 'restart'));
  }
}
const meta = { reps: REPS, seconds: Math.round((Date.now() - started) / 1000), loadavgBefore: load0.map((l) => l.toFixed(2)), loadavgAfter: loadavg().map((l) => l.toFixed(2)), node: process.version, criu: CRIU, dmtcp: DMTCP ?? null };
if (JSON_OUT) {
  console.log(JSON.stringify({ meta, table, ratios }, null, 2));
} else {
  console.log(`\n${JSON.stringify(meta)}\n`);
  console.log('| what | metric | median ms | min | max | n |\n|---|---|---|---|---|---|');
  for (const [k, m] of Object.entries(table)) for (const [n, s] of Object.entries(m)) console.log(`| ${k} | ${n} | ${s.median.toFixed(1)} | ${s.min.toFixed(1)} | ${s.max.toFixed(1)} | ${s.n} |`);
  console.log('\n| ratio | value |\n|---|---|');
  for (const [k, v] of Object.entries(ratios)) console.log(`| ${k} | ${v} |`);
}
