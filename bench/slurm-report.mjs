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

/** Medians of one cell (see bench/slurm.mjs for what each is). */
export function summarizeCell(c) {
  const ckpts = c.checkpoints.map((x) => x.ms);
  // Each checkpoint's slowest local snapshot (self: save, criu: the rank's own dump).
  const local = c.checkpoints.map((x) => (x.local.length ? Math.max(...x.local.filter(Number.isFinite)) : NaN));
  const net = c.checkpoints.map((x, i) => x.ms - local[i]);
  const ping = median(c.pings.map((x) => x.client));
  return {
    ckpt: median(ckpts),
    ckptMin: Math.min(...ckpts),
    ckptMax: Math.max(...ckpts),
    local: median(local),
    net: median(net),
    ping,
    pingCoord: median(c.pings.map((x) => x.coord)),
    rounds: median(ckpts) / ping,
    netRounds: median(net) / ping,
    // As the coordinator sees it: without the control client's own hop (ping client − coord).
    coordRounds: (median(net) - (ping - median(c.pings.map((x) => x.coord)))) / median(c.pings.map((x) => x.coord)),
    srunStart: median(c.srun.map((x) => x.start)),
    srunTotal: median(c.srun.map((x) => x.total)),
    ckptStart: c.start,
    localCkpt: median((c.local ?? []).map((x) => x.ms)),
  };
}

export function printCells(log, crs, cells) {
  const local = crs === 'self' ? 'save' : 'dump';
  log(`\n== ${crs}: checkpoint of a job across nodes (medians; ms) ==`);
  log(`ping = one request/reply through every node agent (client / coordinator's own time); rounds = checkpoint / ping;`);
  log(`net = checkpoint − the slowest rank's own ${local} (manifest), in rounds; start = until the last rank runs (ckpt: init() returned)`);
  log(`coord rounds = (net − the client's own hop, ping client − coord) / coordinator's ping`);
  log(`local = the same ranks' checkpoint with the local launcher (one host, no agents)`);
  log(' nodes × k | ranks | checkpoint (min–max)   | slowest ' + local + ' | ping client / coord | rounds | net rounds | coord rounds |    local | srun start | ckpt start | ratio');
  for (const c of cells) {
    const s = summarizeCell(c);
    log(
      `${String(c.n).padStart(6)} × ${c.k} `.padEnd(11) +
        `| ${String(c.size).padStart(5)} | ${fmt(s.ckpt).padStart(7)} (${fmt(s.ckptMin)}–${fmt(s.ckptMax)})`.padEnd(33) +
        `| ${fmt(s.local, 2).padStart(12)} | ${fmt(s.ping, 2).padStart(8)} / ${fmt(s.pingCoord, 2).padStart(8)} | ${fmt(s.rounds).padStart(6)} | ${fmt(s.netRounds).padStart(10)} | ${fmt(s.coordRounds).padStart(12)} | ${fmt(s.localCkpt).padStart(8)} ` +
        `| ${fmt(s.srunStart, 0).padStart(10)} | ${fmt(s.ckptStart, 0).padStart(10)} | ${fmt(s.ckptStart / s.srunStart, 2).padStart(5)}`,
    );
  }
  const sums = cells.map((c) => ({ c, s: summarizeCell(c) }));
  const within = sums.filter(({ s }) => s.netRounds <= 3).length;
  log(`goal: overhead ≤ 3 rounds → net ≤ 3 in ${within} of ${sums.length} cells; raw checkpoint ≤ 3 rounds in ${sums.filter(({ s }) => s.rounds <= 3).length}`);
  const byNodes = new Map();
  for (const x of sums) byNodes.set(x.c.n, [...(byNodes.get(x.c.n) ?? []), x]);
  for (const [n, xs] of byNodes) {
    const first = xs[0];
    const last = xs.at(-1);
    if (first === last) continue;
    log(`  ${n} node${n > 1 ? 's' : ''}: net rounds ${xs.map(({ s }) => fmt(s.netRounds)).join(' → ')} for ${xs.map(({ c }) => c.k).join(' → ')} ranks/node (×${fmt(last.s.netRounds / first.s.netRounds, 2)} for ×${last.c.k / first.c.k} ranks/node)`);
  }
}

export function printRestarts(log, crs, cells) {
  const rs = cells.filter((c) => c.restart);
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
