// ckpt ps: the running jobs of this user.
import type { Command } from '../command.js';
import { parse } from '../command.js';
import { psSpec } from '../spec/others.js';
import { UsageError } from '../../errors.js';
import { println } from '../output.js';
import { printResult } from '../json.js';
import type { PsJobJson } from '../json-shapes.js';
import { listJobs } from '../../registry/jobs.js';

function uptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export const ps: Command = {
  async run(argv) {
    const { values, positionals } = parse(argv, psSpec);
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const now = Date.now();
    const jobs = listJobs().map((j): PsJobJson => ({
      id: j.id,
      kind: j.kind ?? 'ranks',
      name: j.name,
      size: j.size,
      state: j.state,
      uptimeMs: Math.max(0, now - j.startedAt),
      pid: j.pid,
      pids: j.ranks.map((r) => r.pid),
      // Where each rank runs (a job across nodes: its node, and its pid there).
      ranks: j.ranks.map((r) => ({ rank: r.rank, pid: r.pid, ...(typeof r.node === 'string' ? { node: r.node } : {}) })),
      oob: j.oob,
      command: j.command,
      ...(j.isolated ? { isolated: { rootPid: j.isolated.rootPid, net: j.isolated.net, restoredFrom: j.isolated.restoredFrom ?? null } } : {}),
    }));
    if (values.json) {
      printResult('ps', { jobs });
      return 0;
    }
    if (jobs.length === 0) {
      println('no running jobs');
      return 0;
    }
    const rows = [['ID', 'NAME', 'SIZE', 'STATE', 'UPTIME', jobs.some((j) => j.ranks.some((r) => r.node !== undefined)) ? 'PIDS (NODE:PID)' : 'PIDS']];
    for (const j of jobs) {
      const where = j.ranks.map((r) => (r.node !== undefined ? `${r.node}:${r.pid ?? '-'}` : String(r.pid ?? '-')));
      const pids = where.length > 8 ? `${where.slice(0, 8).join(',')},…` : where.join(',');
      const size = j.kind === 'isolated' ? `iso${j.isolated?.net ? '+net' : ''}` : String(j.size);
      rows.push([j.id, j.name, size, j.state, uptime(j.uptimeMs), pids]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) println(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
    return 0;
  },
};
