#!/usr/bin/env node
// Messaging benchmark: ckpt/rank between two ranks beside a bare Node socket pair
// doing the same in the same run; and job start-up time beside bare `node` processes.
//   node bench/messaging.mjs [--quick] [--reps N] [--transports unix,tcp] [--sizes 8,65536,…]
//                            [--no-startup] [--json]
// Not a test: figures depend on the machine. Goals: latency ≤ 1.5× bare,
// bandwidth ≥ 0.8× bare from 64 KiB up. Latency: half the median round trip of a
// ping-pong; bandwidth: a stream of messages, then one acknowledgement.
// Bandwidth: both sides stream both ways (ckpt/rank: rank 0 → 1 and 1 → 0; the bare
// pair: connecting → accepting side and back) and report the slower direction. ckpt/rank is measured twice: receiving into a buffer the rank reuses (recv's
// `into`, what an MPI program does: the goals' figures), and receiving each
// message into memory of its own (a fresh Buffer per message: page faults for
// every large one, which the bare reader, counting bytes only, never pays).
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const ALL_SIZES = [8, 64, 512, 4096, 32768, 65536, 262144, 1048576, 4194304];
// --sizes reaches the children (ranks, bare pair) through the environment.
const sizesArg = process.argv.includes('--sizes') ? process.argv[process.argv.indexOf('--sizes') + 1] : process.env.BENCH_SIZES;
const SIZES = sizesArg ? sizesArg.split(',').map(Number) : ALL_SIZES;
if (!SIZES.length || SIZES.some((n) => !Number.isInteger(n) || n < 1 || n > 64 << 20)) {
  console.error(`bench/messaging.mjs: --sizes: '${sizesArg}' is not a list of byte counts (1 B to 64 MiB)`);
  process.exit(2);
}
process.env.BENCH_SIZES = SIZES.join(',');
const transportsArg = process.argv.includes('--transports') ? process.argv[process.argv.indexOf('--transports') + 1] : 'unix,tcp';
const TRANSPORTS = String(transportsArg).split(',');
if (!TRANSPORTS.every((t) => t === 'unix' || t === 'tcp')) {
  console.error(`bench/messaging.mjs: --transports: '${transportsArg}' is not a list of unix and tcp`);
  process.exit(2);
}
const quick = process.argv.includes('--quick');

function latencyIters(size) {
  const n = size <= 4096 ? 2000 : size <= 65536 ? 1000 : size <= 1048576 ? 200 : 50;
  return quick ? Math.ceil(n / 10) : n;
}
// Round trips before any size is timed, on both sides alike: the first size (8 B)
// would otherwise pay for the JIT's warm-up of the whole send/recv path (ckpt/rank's
// is longer than the bare pair's), which per-size warm-up rounds do not cover.
// At least WARMUP_TRIPS of them and WARMUP_MS long: right after start-up a process
// pair's first fraction of a second stays slower (8 B into a reused buffer measured
// 21–29 µs first thing, 18–21 µs later in the same processes).
const WARMUP_TRIPS = quick ? 500 : 3000;
const WARMUP_MS = quick ? 200 : 1500;
/** The warm-up's 8-byte messages: byte 0 says whether another round trip follows. */
const warmupDone = (i, t0) => i >= WARMUP_TRIPS && performance.now() - t0 >= WARMUP_MS;
// And a stream each way of 64 KiB messages before the bandwidths (512 MiB; quick:
// 128): here a fresh process pair's streams speed up over their first few hundred MiB
// (measured: a bare pair's 64 KiB stream 0.8, 2.1, 2.6, 4.0 GiB/s in its first four
// 256 MiB rounds), so without it the first sizes timed would measure that ramp.
const WARMUP_STREAM_BYTES = 64 << 10;
const WARMUP_STREAM_COUNT = quick ? 2048 : 8192;

function streamCount(size) {
  const n = Math.max(200, Math.min(50_000, Math.floor((256 << 20) / size)));
  return quick ? Math.ceil(n / 10) : n;
}

const mode = process.argv[2];
if (mode === 'rank') await rankMain();
else if (mode === 'bare-measure') await bareMeasure(process.argv[3], process.argv[4]);
else if (mode === 'bare-echo') await bareEcho(process.argv[3], process.argv[4]);
else if (mode === 'startup-rank') await startupRank();
else await main();

/**
 * One-way latency in µs: half the median round trip. The median, not the mean: on
 * this shared VM a few preempted round trips (milliseconds each) would otherwise
 * decide a small message's figure, for ckpt and bare alike.
 */
function oneWay(tripsNs) {
  const sorted = Float64Array.from(tripsNs).sort();
  return sorted[sorted.length >> 1] / 1e3 / 2;
}

// ---- ckpt/rank side ----------------------------------------------------------------

async function rankMain() {
  const { init } = await import('../dist/rank/index.js');
  const comm = await init();
  const peer = 1 - comm.rank;
  const useInto = process.env.BENCH_RECV_INTO === '1';
  const out = { latency: {}, bandwidth: {} };
  {
    const buf = Buffer.alloc(8, 1);
    const opts = useInto ? { into: Buffer.alloc(8) } : {};
    await comm.barrier();
    const t0 = performance.now();
    for (let i = 0, more = true; more; i++) {
      if (comm.rank === 0) {
        more = !warmupDone(i + 1, t0);
        buf[0] = more ? 1 : 0;
        await comm.send(peer, buf);
        await comm.recv(peer, undefined, opts);
      } else {
        const m = await comm.recv(peer, undefined, opts);
        more = m[0] === 1;
        await comm.send(peer, m);
      }
    }
  }
  for (const size of SIZES) {
    const buf = Buffer.alloc(size, 7);
    const opts = useInto ? { into: Buffer.alloc(size) } : {};
    const iters = latencyIters(size);
    const warm = Math.ceil(iters / 10);
    await comm.barrier();
    const trips = new Float64Array(iters);
    for (let i = 0; i < warm + iters; i++) {
      const t0 = process.hrtime.bigint();
      if (comm.rank === 0) {
        await comm.send(peer, buf);
        await comm.recv(peer, undefined, opts);
      } else {
        const m = await comm.recv(peer, undefined, opts);
        await comm.send(peer, m);
      }
      if (i >= warm) trips[i - warm] = Number(process.hrtime.bigint() - t0);
    }
    out.latency[size] = oneWay(trips);
  }
  {
    // A stream each way before any is timed (as for the bare pair): the first size
    // timed would otherwise also pay for the JIT and the sockets' buffer growth.
    const buf = Buffer.alloc(WARMUP_STREAM_BYTES, 7);
    const opts = useInto ? { into: Buffer.alloc(WARMUP_STREAM_BYTES) } : {};
    for (const sender of [0, 1]) {
      await comm.barrier();
      if (comm.rank === sender) {
        for (let i = 0; i < WARMUP_STREAM_COUNT; i++) await comm.send(peer, buf, 1);
        await comm.recv(peer, 2);
      } else {
        for (let i = 0; i < WARMUP_STREAM_COUNT; i++) await comm.recv(peer, 1, opts);
        await comm.send(peer, 0, 2);
      }
    }
  }
  for (const size of SIZES) {
    const buf = Buffer.alloc(size, 7);
    const opts = useInto ? { into: Buffer.alloc(size) } : {};
    const count = streamCount(size);
    // Both directions: the lower rank of a pair accepts its link, the higher one connects.
    const rates = [];
    for (const sender of [0, 1]) {
      await comm.barrier();
      const t0 = process.hrtime.bigint();
      if (comm.rank === sender) {
        for (let i = 0; i < count; i++) await comm.send(peer, buf, 1);
        await comm.recv(peer, 2);
        rates[sender] = (size * count) / (Number(process.hrtime.bigint() - t0) / 1e9) / (1 << 20); // MiB/s
      } else {
        for (let i = 0; i < count; i++) await comm.recv(peer, 1, opts);
        await comm.send(peer, 0, 2);
      }
    }
    // Rank 1's figure comes to rank 0, which reports the slower direction.
    if (comm.rank === 1) await comm.send(0, rates[1], 3);
    else out.bandwidth[size] = Math.min(rates[0], await comm.recv(1, 3));
  }
  if (comm.rank === 0) console.log(`RESULT ${JSON.stringify(out)}`);
  await comm.finalize();
}

async function startupRank() {
  const { init } = await import('../dist/rank/index.js');
  const comm = await init();
  await comm.finalize();
}

// ---- bare socket pair: same exchanges, raw bytes, no framing ---------------------------

function reader(socket) {
  // Resolves when `n` more bytes have arrived (counting only; no copies).
  let have = 0;
  let want = 0;
  let wake = null;
  let last = 0;
  socket.on('data', (d) => {
    have += d.length;
    last = d[d.length - 1];
    if (wake && have >= want) {
      have -= want;
      const w = wake;
      wake = null;
      w();
    }
  });
  const read = (n) =>
    new Promise((resolve) => {
      if (have >= n) {
        have -= n;
        resolve();
      } else {
        want = n;
        wake = resolve;
      }
    });
  // The last byte that arrived (the warm-up's flag, once a whole message is in).
  read.last = () => last;
  return read;
}

function write(socket, buf) {
  return socket.write(buf) ? undefined : new Promise((r) => socket.once('drain', r));
}

async function bareConnect(transport, where) {
  for (let attempt = 0; ; attempt++) {
    const socket = transport === 'unix' ? connect(where) : connect(Number(where), '127.0.0.1');
    socket.setNoDelay(true);
    try {
      await new Promise((r, j) => socket.once('connect', r).once('error', j));
      return socket;
    } catch (err) {
      if (attempt > 200) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

async function bareAccept(transport, where) {
  const server = createServer();
  await new Promise((r) => (transport === 'unix' ? server.listen(where, r) : server.listen(Number(where), '127.0.0.1', r)));
  const socket = await new Promise((r) => server.once('connection', r));
  socket.setNoDelay(true);
  server.close();
  return socket;
}

async function bareMeasure(transport, where) {
  const socket = await bareConnect(transport, where);
  const read = reader(socket);
  const out = { latency: {}, bandwidth: {} };
  // The same warm-up: the last byte of each 8-byte message says whether another follows.
  const warm = Buffer.alloc(8, 1);
  const t0 = performance.now();
  for (let i = 0, more = true; more; i++) {
    more = !warmupDone(i + 1, t0);
    warm[7] = more ? 1 : 0;
    await write(socket, Buffer.from(warm));
    await read(8);
  }
  for (const size of SIZES) {
    const buf = Buffer.alloc(size, 7);
    const iters = latencyIters(size);
    const warm = Math.ceil(iters / 10);
    const trips = new Float64Array(iters);
    for (let i = 0; i < warm + iters; i++) {
      const t0 = process.hrtime.bigint();
      await write(socket, buf);
      await read(size);
      if (i >= warm) trips[i - warm] = Number(process.hrtime.bigint() - t0);
    }
    out.latency[size] = oneWay(trips);
  }
  // Both ways, like ckpt/rank: this side streams and times, then the echo side does
  // (it reports its figures itself); the slower direction counts.
  await streamOut(socket, read, Buffer.alloc(WARMUP_STREAM_BYTES, 7), WARMUP_STREAM_COUNT);
  await streamIn(socket, read, WARMUP_STREAM_BYTES * WARMUP_STREAM_COUNT);
  for (const size of SIZES) {
    const count = streamCount(size);
    out.bandwidth[size] = await streamOut(socket, read, Buffer.alloc(size, 7), count);
    await streamIn(socket, read, size * count);
  }
  console.log(`RESULT ${JSON.stringify(out)}`);
  socket.end();
}

/** Writes `count` copies of `buf`, then waits for the other side's 1-byte ack: MiB/s. */
async function streamOut(socket, read, buf, count) {
  const t0 = process.hrtime.bigint();
  const acked = read(1);
  for (let i = 0; i < count; i++) await write(socket, buf);
  await acked;
  return (buf.length * count) / (Number(process.hrtime.bigint() - t0) / 1e9) / (1 << 20);
}

/** Reads `bytes`, then acknowledges them with one byte. */
async function streamIn(socket, read, bytes) {
  await read(bytes);
  await write(socket, Buffer.alloc(1));
}

async function bareEcho(transport, where) {
  const socket = await bareAccept(transport, where);
  const read = reader(socket);
  const warm = Buffer.alloc(8, 7);
  for (let more = true; more; ) {
    await read(8);
    more = read.last() === 1;
    await write(socket, warm);
  }
  for (const size of SIZES) {
    const buf = Buffer.alloc(size, 7);
    const iters = latencyIters(size);
    for (let i = 0; i < iters + Math.ceil(iters / 10); i++) {
      await read(size);
      await write(socket, buf);
    }
  }
  const reverse = {};
  await streamIn(socket, read, WARMUP_STREAM_BYTES * WARMUP_STREAM_COUNT);
  await streamOut(socket, read, Buffer.alloc(WARMUP_STREAM_BYTES, 7), WARMUP_STREAM_COUNT);
  for (const size of SIZES) {
    const count = streamCount(size);
    await streamIn(socket, read, size * count);
    reverse[size] = await streamOut(socket, read, Buffer.alloc(size, 7), count);
  }
  console.log(`REVERSE ${JSON.stringify(reverse)}`);
  socket.end();
}

// ---- driver -------------------------------------------------------------------------

function runNode(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited ${code}`))));
  });
}

function parseResult(text, tag = 'RESULT ') {
  const line = text.split('\n').find((l) => l.includes(tag));
  return JSON.parse(line.slice(line.indexOf(tag) + tag.length));
}

async function bare(transport) {
  // Two children like the two ranks: one listens and echoes, the other connects and measures.
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-bench-'));
  try {
    const addr = transport === 'unix' ? join(dir, 'echo.sock') : String(await freePort());
    const echo = runNode([self, 'bare-echo', transport, addr]);
    const result = parseResult(await runNode([self, 'bare-measure', transport, addr]));
    const reverse = parseResult(await echo, 'REVERSE ');
    // The slower direction, as for ckpt/rank.
    for (const size of SIZES) result.bandwidth[size] = Math.min(result.bandwidth[size], reverse[size]);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function ckpt(transport, into) {
  const { launchJob } = await import('../dist/runtime/index.js');
  const job = await launchJob({
    command: process.execPath,
    args: [self, 'rank'],
    size: 2,
    oob: transport,
    output: { mode: 'events' },
    register: false,
    env: { ...process.env, BENCH_RECV_INTO: into ? '1' : '0' },
  });
  let result;
  job.on('output', ({ line, stream }) => {
    const text = line.toString();
    if (text.startsWith('RESULT ')) result = JSON.parse(text.slice(7));
    else if (stream === 'stderr') process.stderr.write(`${text}\n`);
  });
  const r = await job.wait();
  if (r.status !== 0) throw new Error(`benchmark job failed: ${r.error?.message}`);
  return result;
}

async function startup(n) {
  const { launchJob } = await import('../dist/runtime/index.js');
  const times = { ckpt: [], bare: [] };
  for (let rep = 0; rep < (quick ? 2 : 5); rep++) {
    let t0 = performance.now();
    const job = await launchJob({ command: process.execPath, args: [self, 'startup-rank'], size: n, output: { mode: 'events' }, register: false });
    const r = await job.wait();
    if (r.status !== 0) throw new Error(`start-up job failed: ${r.error?.message}`);
    times.ckpt.push(performance.now() - t0);
    t0 = performance.now();
    await Promise.all(Array.from({ length: n }, () => runNode(['-e', ''])));
    times.bare.push(performance.now() - t0);
  }
  const median = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return { ckpt: median(times.ckpt), bare: median(times.bare) };
}

function fmtSize(n) {
  return n >= 1 << 20 ? `${n / (1 << 20)} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`;
}

async function main() {
  const report = { node: process.version, transports: {}, startup: {} };
  // The machine is shared with everything else: run ckpt and bare alternately a few
  // times and keep each one's best figure per size (least disturbed run).
  // Phases of a slower machine last seconds here: five alternations give both sides
  // the same chances of an undisturbed one (--reps N to change).
  const repsArg = Number(process.argv[process.argv.indexOf('--reps') + 1]);
  const reps = process.argv.includes('--reps') && repsArg >= 1 ? repsArg : quick ? 1 : 5;
  const best = (runs) => ({
    latency: Object.fromEntries(SIZES.map((n) => [n, Math.min(...runs.map((r) => r.latency[n]))])),
    bandwidth: Object.fromEntries(SIZES.map((n) => [n, Math.max(...runs.map((r) => r.bandwidth[n]))])),
  });
  for (const transport of TRANSPORTS) {
    const cs = [];
    const fs = [];
    const bs = [];
    for (let i = 0; i < reps; i++) {
      cs.push(await ckpt(transport, true));
      bs.push(await bare(transport));
      fs.push(await ckpt(transport, false));
    }
    const c = best(cs);
    const f = best(fs);
    const b = best(bs);
    report.transports[transport] = { ckpt: c, ckptFreshBuffers: f, bare: b };
    console.log(`\n== ${transport}: ckpt/rank (recv into a reused buffer) vs bare Node socket pair; last columns: ckpt/rank with a fresh buffer per message ==`);
    console.log('size      | latency µs ckpt / bare (ratio, goal ≤1.5) | bandwidth MiB/s ckpt / bare (ratio, goal ≥0.8 from 64 KiB) | fresh: latency, bandwidth ratios');
    for (const size of SIZES) {
      const lr = c.latency[size] / b.latency[size];
      const br = c.bandwidth[size] / b.bandwidth[size];
      console.log(
        `${fmtSize(size).padEnd(9)} | ${c.latency[size].toFixed(1).padStart(8)} / ${b.latency[size].toFixed(1).padStart(8)} (${lr.toFixed(2)}${lr <= 1.5 ? '' : ' !'})`.padEnd(54) +
          `| ${c.bandwidth[size].toFixed(0).padStart(6)} / ${b.bandwidth[size].toFixed(0).padStart(6)} (${br.toFixed(2)}${size < 65536 || br >= 0.8 ? '' : ' !'})`.padEnd(32) +
          `| ${(f.latency[size] / b.latency[size]).toFixed(2)}, ${(f.bandwidth[size] / b.bandwidth[size]).toFixed(2)}`,
      );
    }
  }
  if (!process.argv.includes('--no-startup')) console.log('\n== job start-up (median), ckpt run vs N bare `node` processes ==');
  for (const n of process.argv.includes('--no-startup') ? [] : [1, 4, 16]) {
    const s = await startup(n);
    report.startup[n] = s;
    console.log(`N=${String(n).padEnd(3)} ckpt ${s.ckpt.toFixed(0).padStart(5)} ms   bare ${s.bare.toFixed(0).padStart(5)} ms   (${(s.ckpt / s.bare).toFixed(2)}×)`);
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(report));
}
