// `ckpt snapshots ls|inspect|verify|rm`: look after a snapshot store.
import { formatBytes } from '../../util/format-bytes.js';
import { parse, intOption, type Command } from '../command.js';
import { ErrorCodes, SnapshotError, UsageError } from '../../errors.js';
import { collectGarbage, listSnapshots, openSnapshot, verifySnapshot } from '../../store/store.js';
import { removeSnapshotAndLeftovers } from '../../process/remove.js';
import { describeManifest, type Manifest, type RankRecord } from '../../store/manifest.js';
import { printJson, println } from '../output.js';

const usage = 'ckpt snapshots ls STORE | inspect REF [--show-env] | verify REF | rm REF | gc STORE  [--seq N] [--json]';

/** A manifest for display: the recorded environment's values hidden unless asked for. */
function shown(m: Manifest, showEnv: boolean): Manifest {
  if (showEnv) return m;
  const hide = (env: Record<string, string>) => Object.fromEntries(Object.keys(env).map((k) => [k, '(hidden: --show-env)']));
  return m.kind === 'process' ? { ...m, process: { ...m.process, env: hide(m.process.env) } } : { ...m, job: { ...m.job, env: hide(m.job.env) } };
}

const mb = formatBytes;

export const snapshotsCommand: Command = {
  name: 'snapshots',
  summary: 'list, inspect, verify or remove snapshots',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      { seq: { type: 'string' }, json: { type: 'boolean', default: false }, 'show-env': { type: 'boolean', default: false } },
      usage,
    );
    const [action, ref, ...extra] = positionals;
    if (!action || !ref || extra.length) throw new UsageError('say what to do and to which snapshot', { hint: `usage: ${usage}` });
    const json = values.json === true;
    const seq = intOption(values.seq, 'seq', 1);
    switch (action) {
      case 'ls': {
        const list = listSnapshots(ref);
        if (json) {
          printJson({
            ok: true,
            snapshots: list.map((s) => ({
              seq: s.seq,
              dir: s.dir,
              error: s.error,
              crs: s.manifest?.crs.name,
              createdAt: s.manifest?.createdAt,
              kind: s.manifest?.kind,
              what: s.manifest ? describeManifest(s.manifest).what : undefined,
              bytes: s.manifest?.files.reduce((n, f) => n + f.size, 0),
            })),
          });
        } else {
          if (list.length === 0) println('no committed snapshots');
          for (const s of list) {
            if (s.manifest) {
              const m = s.manifest;
              const bytes = m.files.reduce((n, f) => n + f.size, 0);
              const d = describeManifest(m);
              println(`${String(s.seq).padStart(6)}  ${m.createdAt}  ${m.crs.name.padEnd(5)} ${d.what}  ${mb(bytes)}  ${d.command.join(' ').slice(0, 60)}`);
            } else {
              println(`${String(s.seq).padStart(6)}  unreadable: ${s.error}`);
            }
          }
        }
        return 0;
      }
      case 'inspect': {
        // Reading runs nothing: another user's snapshot may be looked at.
        const snap = openSnapshot(ref, { seq, trustOwner: true });
        if (json) printJson({ ok: true, dir: snap.dir, manifest: shown(snap.manifest, values['show-env'] === true) });
        else {
          const m = snap.manifest;
          println(`snapshot   ${snap.dir} (seq ${m.seq})`);
          const d = describeManifest(m);
          const origin = { self: 'by the process itself', external: 'from outside', coordinated: 'by the job coordinator' }[m.origin];
          println(`made by    ${m.crs.name} ${m.crs.version} (ckpt ${m.ckptVersion}), ${origin}`);
          println(`taken      ${m.createdAt} on ${m.host}, committed ${m.committedAt}; then ${m.endState}`);
          println(`holds      ${d.what}, pids ${d.pids.join(' ')}`);
          println(`command    ${d.command.join(' ')}`);
          println(`cwd        ${m.kind === 'process' ? m.process.cwd : m.job.cwd}`);
          println(`files      ${m.files.length}, ${mb(m.files.reduce((n, f) => n + f.size, 0))}`);
          if (m.kind === 'job') println(`ranks      ${describeRanks(m.ranks)}`);
          if (m.kind === 'job' && m.ranks.some((r) => r.node)) println(`nodes      ${ranksPerNode(m.ranks)}`);
        }
        return 0;
      }
      case 'verify': {
        const snap = openSnapshot(ref, { seq, trustOwner: true });
        const result = await verifySnapshot(snap);
        const more = result.problems.length > 1 ? ` (and ${result.problems.length - 1} more)` : '';
        const damaged = `${snap.dir} is damaged: ${result.problems[0]}${more}`;
        if (json) {
          const error = result.ok ? undefined : { code: ErrorCodes.SNAPSHOT_CORRUPT, message: damaged, problems: result.problems };
          printJson({ dir: snap.dir, ...result, error });
        } else if (result.ok) println(`${snap.dir}: ok (${result.files} files, ${mb(result.bytes)})`);
        else {
          for (const p of result.problems) println(`${snap.dir}: ${p}`);
          throw new SnapshotError(ErrorCodes.SNAPSHOT_CORRUPT, damaged);
        }
        return result.ok ? 0 : 1;
      }
      case 'rm': {
        const snap = openSnapshot(ref, { seq });
        if (seq === undefined && snap.dir !== ref.replace(/\/+$/, '') && !ref.endsWith(String(snap.seq).padStart(6, '0'))) {
          throw new UsageError('name the snapshot to remove: its directory, or the store with --seq N');
        }
        const removed = await removeSnapshotAndLeftovers(snap);
        if (json) printJson({ ok: true, removed: removed.dir, ...(removed.lockTable ? { lockTable: removed.lockTable } : {}) });
        else println(`removed ${removed.dir}${removed.lockTable ? ` (and CRIU's network lock table ${removed.lockTable})` : ''}`);
        return 0;
      }
      case 'gc': {
        const removed = collectGarbage(ref);
        if (json) printJson({ ok: true, removed });
        else println(removed.length ? `removed ${removed.length} abandoned partial snapshot(s): ${removed.join(' ')}` : 'nothing to remove');
        return 0;
      }
      default:
        throw new UsageError(`unknown snapshots action '${action}'`, { hint: `usage: ${usage}` });
    }
  },
};

/** "0–2, 4 in ranks.pack; 3 in rank-N/; safe point 1234": where each rank's state is. */
function describeRanks(ranks: RankRecord[]): string {
  const where = new Map<string, number[]>();
  for (const r of ranks) {
    const w = r.packed ? `in ${r.packed.file}` : 'in rank-N/';
    where.set(w, [...(where.get(w) ?? []), r.rank]);
  }
  const parts = [...where].map(([w, rs]) => `${rankList(rs)} ${w}`);
  const points = [...new Set(ranks.map((r) => r.safePoint).filter((x) => x !== undefined))];
  if (points.length === 1) parts.push(`safe point ${points[0]}`);
  return parts.join('; ');
}

/** 0, 1, 2, 5 → "0–2, 5". */
function rankList(rs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < rs.length; ) {
    let j = i;
    while (j + 1 < rs.length && rs[j + 1] === rs[j]! + 1) j++;
    out.push(j > i ? `${rs[i]}–${rs[j]}` : `${rs[i]}`);
    i = j + 1;
  }
  return out.join(', ');
}

/** "n1: ranks 0, 1; n2: ranks 2, 3" for a job that ran across nodes. */
function ranksPerNode(ranks: { rank: number; node?: string }[]): string {
  const by = new Map<string, number[]>();
  for (const r of ranks) by.set(r.node || '?', [...(by.get(r.node || '?') ?? []), r.rank]);
  return [...by].map(([node, rs]) => `${node}: rank${rs.length > 1 ? 's' : ''} ${rs.join(', ')}`).join('; ');
}
