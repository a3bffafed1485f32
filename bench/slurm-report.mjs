// Tables of bench/slurm.mjs: per checkpointer, nodes × ranks per node → checkpoint
// latency, the bare round through the node agents, the overhead in such rounds, and
// start-up beside a bare srun; then the restart on another node set.

const median = (xs) => {
  const a = xs.filter(Number.isFinite).sort((x, y) => x - y);
  if (!a.length) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/** The slowest rank's own work in one checkpoint: self, its way to the target safe point and its save; criu, its dump. */
const ownWork = (x) => {
  const max = (xs) => (xs?.length ? Math.max(...xs.filter(Number.isFinite)) : NaN);
  return max(x.local) + (x.reach?.length ? max(x.reach) : 0);
};

/** Medians of one cell (see bench/slurm.mjs for what each is). */
export function summarizeCell(c) {
  const ckpts = c.checkpoints.map((x) => x.ms);
  // Each checkpoint's slowest local snapshot (self: save, criu: the rank's own dump).
  const local = c.checkpoints.map((x) => (x.local.length ? Math.max(...x.local.filter(Number.isFinite)) : NaN));
  const net = c.checkpoints.map((x, i) => x.ms - local[i]);
  // What coordination adds: the checkpoint less the ranks' own work and the commit's wait on the disk.
  const overhead = c.checkpoints.map((x) => x.ms - ownWork(x) - (x.syncMs ?? NaN));
  // criu: the same with the slowest node's dumps side by side as the ranks' own work (slurm-probe.mjs, nodeSpan).
  const spanOverhead = c.checkpoints.map((x) => (Number.isFinite(x.span) ? x.ms - x.span - (x.syncMs ?? NaN) : NaN));
  const ping = median(c.pings.map((x) => x.client));
  const rankPing = median((c.rankPings ?? []).map((x) => x.client));
  const idlePing = median((c.idleRankPings ?? []).map((x) => x.client));
  const phases = {};
  for (const x of c.checkpoints) for (const [k, v] of Object.entries(x.phasesMs ?? {})) (phases[k] ??= []).push(v);
  const parts = overheadParts(c);
  return {
    ckpt: median(ckpts),
    ckptMin: Math.min(...ckpts),
    ckptMax: Math.max(...ckpts),
    local: median(local),
    own: median(c.checkpoints.map(ownWork)),
    sync: median(c.checkpoints.map((x) => x.syncMs ?? NaN)),
    net: median(net),
    overhead: median(overhead),
    ping,
    rankPing,
    pingCoord: median(c.pings.map((x) => x.coord)),
    rounds: median(ckpts) / rankPing,
    overheadRounds: median(overhead) / rankPing,
    span: median(c.checkpoints.map((x) => x.span ?? NaN)),
    spanOverheadRounds: median(spanOverhead) / rankPing,
    idleMs: c.idleMs ?? NaN,
    idlePing,
    idleOverheadRounds: median(overhead) / idlePing,
    idleSpanOverheadRounds: median(spanOverhead) / idlePing,
    netRounds: median(net) / ping,
    phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])),
    srunStart: median(c.srun.map((x) => x.start)),
    srunTotal: median(c.srun.map((x) => x.total)),
    ckptStart: c.start,
    localCkpt: median((c.local ?? []).map((x) => x.ms)),
    parts,
  };
}

/**
 * Where the overhead goes, each part beside its share of a round (medians, ms): the
 * caller's legs (its request and the reading of its answer: the checkpoint less the
 * coordinator's phases; a round's: client − coord); the coordinator's own begin; the
 * ranks' phases (criu: dump; self: prepare, reach, save) beyond the slowest rank's own work, beside a round's
 * coordinator part; the commit beyond its disk wait.
 */
function overheadParts(c) {
  const done = c.checkpoints.filter((x) => x.phasesMs && Number.isFinite(x.syncMs));
  if (!done.length) return null;
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  // The phases in which the ranks work: all but the coordinator's begin, commit and resume.
  const ranksPhase = (p) => sum(Object.fromEntries(Object.entries(p).filter(([k]) => !['begin', 'commit', 'resume'].includes(k))));
  const rounds = c.rankPings ?? [];
  return {
    callerLegs: median(done.map((x) => x.ms - sum(x.phasesMs))),
    roundCallerLegs: median(rounds.map((x) => x.client - x.coord)),
    begin: median(done.map((x) => x.phasesMs.begin ?? NaN)),
    ranksBeyondOwn: median(done.map((x) => ranksPhase(x.phasesMs) - ownWork(x))),
    roundCoord: median(rounds.map((x) => x.coord)),
    commitCpu: median(done.map((x) => (x.phasesMs.commit ?? NaN) - x.syncMs)),
  };
}

export function printCells(log, crs, cells) {
  const own = crs === 'self' ? 'reach+save' : 'dump';
  log(`\n== ${crs}: checkpoint of a job across nodes (medians; ms) ==`);
  log(`round = one request/reply through the node agents to every rank (control op ping-ranks, as the client sees it); agents = the same to the agents only;`);
  log(`own = the slowest rank's own ${crs === 'self' ? 'way to the target safe point + save (manifest data.reachMs + data.saveMs)' : 'dump (manifest data.dumpMs)'}; disk = the commit's fsyncs;`);
  log(`overhead = checkpoint − own − disk: what coordination adds; rounds = checkpoint / round; overhead rounds = overhead / round;`);
  log(`agent rounds = (checkpoint − slowest ${crs === 'self' ? 'save' : 'dump'}) / agents (the figure of earlier runs); local = the same ranks with the local launcher`);
  log(' nodes × k | ranks | checkpoint (min–max)   |   round | agents | own ' + own.padStart(10) + ' |  disk | overhead | rounds | overhead rounds | agent rounds |    local | srun start | ckpt start | ratio');
  for (const c of cells) {
    const s = summarizeCell(c);
    log(
      `${String(c.n).padStart(6)} × ${c.k} `.padEnd(11) +
        `| ${String(c.size).padStart(5)} | ${fmt(s.ckpt).padStart(7)} (${fmt(s.ckptMin)}–${fmt(s.ckptMax)})`.padEnd(33) +
        `| ${fmt(s.rankPing, 2).padStart(7)} | ${fmt(s.ping, 2).padStart(6)} | ${fmt(s.own, 2).padStart(14)} | ${fmt(s.sync, 2).padStart(5)} | ${fmt(s.overhead, 2).padStart(8)} | ${fmt(s.rounds).padStart(6)} | ${fmt(s.overheadRounds, 2).padStart(15)} | ${fmt(s.netRounds).padStart(12)} | ${fmt(s.localCkpt).padStart(8)} ` +
        `| ${fmt(s.srunStart, 0).padStart(10)} | ${fmt(s.ckptStart, 0).padStart(10)} | ${fmt(s.ckptStart / s.srunStart, 2).padStart(5)}`,
    );
  }
  log('phases as the coordinator timed them (medians, ms):');
  for (const c of cells) log(`  ${c.n} × ${c.k}: ${Object.entries(summarizeCell(c).phases).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}`);
  log(`where the overhead goes (medians, ms; in brackets a round's share): the caller's legs (request, reading the answer), the coordinator's begin, the ranks' phase beyond their own work, the commit beyond the disk:`);
  for (const c of cells) {
    const p = summarizeCell(c).parts;
    if (p) log(`  ${c.n} × ${c.k}: caller ${fmt(p.callerLegs, 2)} (${fmt(p.roundCallerLegs, 2)}), begin ${fmt(p.begin, 2)}, ranks ${fmt(p.ranksBeyondOwn, 2)} (${fmt(p.roundCoord, 2)}), commit ${fmt(p.commitCpu, 2)}`);
  }
  const sums = cells.map((c) => ({ c, s: summarizeCell(c) }));
  const within = sums.filter(({ s }) => s.overheadRounds <= 3).length;
  log(`goal: overhead ≤ 3 rounds in ${within} of ${sums.length} cells; the whole checkpoint ≤ 3 rounds in ${sums.filter(({ s }) => s.rounds <= 3).length}`);
  if (crs === 'criu') {
    log(`with the slowest node's dumps side by side as own work (its first rank's dump start to its last one's end, by its clock):`);
    for (const { c, s } of sums) log(`  ${c.n} × ${c.k}: node span ${fmt(s.span, 2)} ms, overhead ${fmt(s.spanOverheadRounds, 2)} rounds`);
    log(`  overhead ≤ 3 rounds in ${sums.filter(({ s }) => s.spanOverheadRounds <= 3).length} of ${sums.length} cells`);
  }
  if (sums.some(({ s }) => Number.isFinite(s.idlePing))) {
    log(`in rounds after an idle as long as the checkpoint (the wait its last steps follow; bench/idle.mjs):`);
    for (const { c, s } of sums) {
      const span = crs === 'criu' ? `, ${fmt(s.idleSpanOverheadRounds, 2)} with the node span` : '';
      log(`  ${c.n} × ${c.k}: round after ${fmt(s.idleMs, 0)} ms idle ${fmt(s.idlePing, 2)} ms (${fmt(s.idlePing / s.rankPing, 2)}× the round), overhead ${fmt(s.idleOverheadRounds, 2)} of them${span}`);
    }
    const spanIn = crs === 'criu' ? `; with the node span in ${sums.filter(({ s }) => s.idleSpanOverheadRounds <= 3).length}` : '';
    log(`  overhead ≤ 3 such rounds in ${sums.filter(({ s }) => s.idleOverheadRounds <= 3).length} of ${sums.length} cells${spanIn}`);
  }
  const byNodes = new Map();
  for (const x of sums) byNodes.set(x.c.n, [...(byNodes.get(x.c.n) ?? []), x]);
  for (const [n, xs] of byNodes) {
    const first = xs[0];
    const last = xs.at(-1);
    if (first === last) continue;
    log(`  ${n} node${n > 1 ? 's' : ''}: overhead rounds ${xs.map(({ s }) => fmt(s.overheadRounds, 2)).join(' → ')} for ${xs.map(({ c }) => c.k).join(' → ')} ranks/node (×${fmt(last.s.overheadRounds / first.s.overheadRounds, 2)} for ×${last.c.k / first.c.k} ranks/node)`);
  }
}

export function printRestarts(log, crs, cells) {
  const rs = cells.filter((c) => c.restart?.times.length);
  if (!rs.length) return;
  log(`\n${crs}: restart on another node set (ms from salloc … ckpt restart to the last rank's restart hook; bare srun of the same ranks beside it)`);
  log(' from            | to              | ranks | restart (each)              | srun start | ratio');
  for (const c of rs) {
    const r = c.restart;
    const t = median(r.times);
    const s = median(r.srun.map((x) => x.start));
    log(
      ` ${c.n} nodes × ${c.k}`.padEnd(17) + `| ${r.nodes} nodes × ≤${r.perNode}`.padEnd(18) + `| ${String(c.size).padStart(5)} | ${fmt(t, 0).padStart(7)} (${r.times.map((x) => fmt(x, 0)).join(', ')})`.padEnd(38) + `| ${fmt(s, 0).padStart(10)} | ${fmt(t / s, 2).padStart(5)}`,
    );
  }
}
