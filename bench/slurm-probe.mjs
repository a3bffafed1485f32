#!/usr/bin/env node
// The in-cluster half of bench/slurm.mjs: run inside the Slurm test cluster's
// namespaces (the coordinator listens on the login host's address there, and its
// registry entry names pids of that pid namespace), it times control requests to a
// running job in this process, so no CLI start-up is in the figures.
//   node bench/slurm-probe.mjs '{"name":…,"crs":…,"pings":N,"checkpoints":N,"warmup":N,"idlePings":N,"end":"kill"|"terminate"|"none"}'
//   node bench/slurm-probe.mjs '{"name":…,"end":"kill"}'   (only ends the job)
// Prints one JSON line on stdout:
//   { pings: [{ client, coord }], rankPings: [{ client, coord }], idleMs, idleRankPings: [{ client, coord }],
//     checkpoints: [{ ms, seq, local: [ms per rank], reach: [ms per rank], span, phasesMs, syncMs }], ended }
// ping       op 'ping-agents': the coordinator pings every node agent once and replies
//            its own time (coord); client = the whole request/reply as seen here.
// rank ping  op 'ping-ranks': one request to every rank through its agent, answered at once.
// idle ping  the same, started by the coordinator as long after the request as the median
//            checkpoint takes (idleMs; less the time it waited, as it reports): on this VM an
//            operation costs several times more after an idle (bench/idle.mjs), and a
//            checkpoint's last steps — the coordinator's, its agents', and the reading of
//            its answer here — come after they all waited for the ranks' saves or dumps.
// checkpoint op 'checkpoint' (then: continue) on the same control connection; local =
//            the ranks' own snapshot times from the manifest (self data.saveMs, criu
//            data.dumpMs); reach = self ranks' own way to the target safe point
//            (data.reachMs); criu span = the slowest node's dumps side by side (its first
//            rank's dump start to its last one's end); phasesMs and syncMs as the
//            coordinator timed them.
// With CKPT_STATE_DIR set by the caller, the registry is the benchmark's own.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findJob } from '../dist/registry/jobs.js';
import { connectControl } from '../dist/control/job-control.js';

const o = JSON.parse(process.argv[2] ?? '{}');
const now = () => performance.now();
const TIMEOUT = 300_000;

async function request(channel, op, body = {}) {
  const reply = await channel.request({ type: 'request', op, ...body }, TIMEOUT, `'${op}' of job ${o.name}`);
  if (reply.ok !== true) throw new Error(`'${op}' refused: ${String(reply.message)}`);
  return reply;
}

function localTimes(snapshot, crs) {
  try {
    const m = JSON.parse(readFileSync(join(snapshot, 'manifest.json'), 'utf8'));
    const xs = crs === 'criu' ? m.data?.dumpMs : m.data?.saveMs;
    const reach = m.data?.reachMs;
    return { local: Array.isArray(xs) ? xs : [], reach: Array.isArray(reach) ? reach : [], ...(crs === 'criu' ? { span: nodeSpan(m) } : {}) };
  } catch {
    return { local: [], reach: [] };
  }
}

/**
 * criu: the slowest node's dumps side by side — from its first rank's dump start to its
 * last one's end, by that node's clock (data.dumpEndAt − data.dumpMs … data.dumpEndAt).
 * A node's ranks share its CPUs: with more ranks than cores a rank's dump starts late
 * because the others' dumps hold them, which the slowest rank's own dumpMs leaves out.
 */
function nodeSpan(m) {
  const ends = m.data?.dumpEndAt;
  const dumps = m.data?.dumpMs;
  if (!Array.isArray(ends) || !Array.isArray(dumps)) return null;
  const byNode = new Map();
  m.ranks.forEach((r, i) => {
    if (!Number.isFinite(ends[i]) || !Number.isFinite(dumps[i])) return;
    const x = byNode.get(r.node ?? '') ?? { from: Infinity, to: -Infinity };
    x.from = Math.min(x.from, ends[i] - dumps[i]);
    x.to = Math.max(x.to, ends[i]);
    byNode.set(r.node ?? '', x);
  });
  return byNode.size ? Math.max(...[...byNode.values()].map((x) => x.to - x.from)) : null;
}

async function ping(channel, op = 'ping-agents') {
  const t0 = now();
  const reply = await request(channel, op);
  return { client: now() - t0, coord: Number(reply.ms) };
}

const out = { pings: [], rankPings: [], idleMs: null, idleRankPings: [], checkpoints: [], ended: null };
const record = findJob(o.name);
const channel = await connectControl(record);
try {
  // Warm-up: a round and (self) a checkpoint or two whose figures are dropped.
  if ((o.pings ?? 0) > 0) await ping(channel);
  if ((o.pings ?? 0) > 0) await ping(channel, 'ping-ranks');
  for (let i = 0; i < (o.pings ?? 0); i++) {
    await sleep(20 + Math.random() * 30);
    out.pings.push(await ping(channel));
    await sleep(20 + Math.random() * 30); // the ranks are somewhere in their loop
    out.rankPings.push(await ping(channel, 'ping-ranks'));
  }
  for (let i = 0; i < (o.warmup ?? 0) + (o.checkpoints ?? 0); i++) {
    await sleep(30 + Math.random() * 50); // the ranks are somewhere in their loop
    const t0 = now();
    const reply = await request(channel, 'checkpoint', { crs: o.crs });
    const ms = now() - t0;
    if (i >= (o.warmup ?? 0)) out.checkpoints.push({ ms, seq: Number(reply.seq), ...localTimes(String(reply.snapshot), o.crs), phasesMs: reply.phasesMs ?? null, syncMs: reply.syncMs ?? null });
    // Pings right after each checkpoint: the rounds under the same conditions.
    if ((o.pings ?? 0) > 0) {
      out.pings.push(await ping(channel));
      out.rankPings.push(await ping(channel, 'ping-ranks'));
    }
  }
  if ((o.idlePings ?? 0) > 0 && out.checkpoints.length) {
    const ms = out.checkpoints.map((x) => x.ms).sort((a, b) => a - b);
    out.idleMs = ms[ms.length >> 1];
    for (let i = 0; i < o.idlePings; i++) {
      await sleep(30 + Math.random() * 50); // as before a checkpoint
      // The round starts idleMs after the request: it, and the reading of its answer
      // here, come after an idle as long as a checkpoint's, as a checkpoint's last steps do.
      const t0 = now();
      const reply = await request(channel, 'ping-ranks', { delayMs: out.idleMs });
      out.idleRankPings.push({ client: now() - t0 - Number(reply.waitedMs), coord: Number(reply.ms) });
    }
  }
  if (o.end === 'terminate') {
    const reply = await request(channel, 'checkpoint', { crs: o.crs, then: 'terminate' });
    out.ended = { terminated: Number(reply.seq), store: String(reply.store) };
  } else if (o.end === 'kill') {
    await request(channel, 'kill');
    out.ended = { killed: true };
  }
} finally {
  channel.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
