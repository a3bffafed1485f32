// `ckpt snapshots ls|inspect|verify|rm|gc`: look after a snapshot store.
import { formatBytes } from '../../util/format-bytes.js';
import { parse, intOption, type Command } from '../command.js';
import { gcSpec, inspectSpec, lsSpec, rmSpec, verifySpec } from '../spec/snapshots.js';
import { type CkptError, ErrorCodes, SnapshotError, UsageError } from '../../errors.js';
import { collectGarbage, listSnapshots, openSnapshot, removeDamagedSnapshot, verifySnapshot } from '../../store/store.js';
import { SEQ_NAME } from '../../store/layout.js';
import { removeSnapshotAndLeftovers } from '../../process/remove.js';
import { describeManifest, type Manifest, type RankRecord } from '../../store/manifest.js';
import { basename, dirname, resolve } from 'node:path';
import { printable, println } from '../output.js';
import { printResult } from '../json.js';

/** A manifest for display: the recorded environment's values hidden unless asked for. */
function shown(m: Manifest, showEnv: boolean): Manifest {
  if (showEnv) return m;
  const hide = (env: Record<string, string>) => Object.fromEntries(Object.keys(env).map((k) => [k, '(hidden: --show-env)']));
  return m.kind === 'process' ? { ...m, process: { ...m.process, env: hide(m.process.env) } } : { ...m, job: { ...m.job, env: hide(m.job.env) } };
}

const mb = formatBytes;

export const snapshotsCommand: Command = {
  async run(argv, action) {
    // main.ts found the subcommand; each has its own table.
    const spec = { ls: lsSpec, inspect: inspectSpec, verify: verifySpec, rm: rmSpec, gc: gcSpec }[action ?? ''];
    if (!spec) throw new UsageError(`unknown snapshots subcommand '${action}'`);
    const { values: parsed, positionals } = parse(argv, spec);
    const values = parsed as { seq?: string; json?: boolean; 'show-env'?: boolean; dir?: string; 'dry-run'?: boolean; force?: boolean };
    if (action === 'gc' && values.dir !== undefined && positionals.length === 0) positionals.push(values.dir);
    const [ref, ...extra] = positionals;
    const operand = spec.operands![0]!.name;
    if (!ref) throw new UsageError(`name the ${operand === 'STORE' ? 'store' : 'snapshot (a store or a snapshot directory)'}: ckpt snapshots ${action} ${operand}`);
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const json = values.json === true;
    const seq = intOption(values.seq, 'seq', 1);
    switch (action) {
      case 'ls': {
        const list = listSnapshots(ref);
        if (json) {
          printResult('snapshots ls', {
            store: resolve(ref),
            snapshots: list.map(({ seq, dir: snapshot, manifest: m, error }) =>
              m
                ? {
                    seq,
                    snapshot,
                    kind: m.kind,
                    crs: { name: m.crs.name, version: m.crs.version },
                    createdAt: m.createdAt,
                    what: describeManifest(m).what,
                    bytes: m.files.reduce((n, f) => n + f.size, 0),
                  }
                : { seq, snapshot, error: error ?? 'unreadable' },
            ),
          });
        } else {
          if (list.length === 0) println('no committed snapshots');
          for (const s of list) {
            if (s.manifest) {
              const m = s.manifest;
              const bytes = m.files.reduce((n, f) => n + f.size, 0);
              const d = describeManifest(m);
              println(`${String(s.seq).padStart(6)}  ${m.createdAt}  ${m.crs.name.padEnd(5)} ${d.what}  ${mb(bytes)}  ${printable(d.command.join(' ')).slice(0, 60)}`);
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
        if (json) printResult('snapshots inspect', { snapshot: snap.dir, seq: snap.seq, manifest: shown(snap.manifest, values['show-env'] === true) });
        else {
          const m = snap.manifest;
          println(`snapshot   ${snap.dir} (seq ${m.seq})`);
          const d = describeManifest(m);
          const origin = { self: 'by the process itself', external: 'from outside', coordinated: 'by the job coordinator' }[m.origin];
          println(`made by    ${printable(`${m.crs.name} ${m.crs.version} (ckpt ${m.ckptVersion})`)}, ${origin}`);
          println(`taken      ${printable(`${m.createdAt} on ${m.host}, committed ${m.committedAt}`)}; then ${m.endState}`);
          println(`holds      ${d.what}, pids ${d.pids.join(' ')}`);
          println(`command    ${printable(d.command.join(' '))}`);
          println(`cwd        ${printable(m.kind === 'process' ? m.process.cwd : m.job.cwd)}`);
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
        if (result.ok) {
          if (json) printResult('snapshots verify', { snapshot: snap.dir, seq: snap.seq, files: result.files, bytes: result.bytes, problems: [] });
          else println(`${printable(snap.dir)}: ok (${result.files} files, ${mb(result.bytes)})`);
          return 0;
        }
        if (!json) for (const p of result.problems) println(printable(`${snap.dir}: ${p}`));
        // With --json every problem is in the error's details.
        throw new SnapshotError(ErrorCodes.SNAPSHOT_CORRUPT, damaged, { details: { snapshot: snap.dir, seq: snap.seq, problems: result.problems } });
      }
      case 'rm': {
        let snap;
        try {
          snap = openSnapshot(ref, { seq });
        } catch (err) {
          // --force: a snapshot whose manifest cannot be read goes by its number.
          if (values.force !== true || (err as CkptError).code !== ErrorCodes.SNAPSHOT_FORMAT) throw err;
          const named = resolve(ref);
          const [store, n] = seq !== undefined ? [named, seq] : SEQ_NAME.test(basename(named)) ? [dirname(named), Number(basename(named))] : [undefined, undefined];
          if (store === undefined) throw new UsageError('name the damaged snapshot: its directory, or the store with --seq N', { cause: err });
          const removed = removeDamagedSnapshot(store, n!);
          if (json) printResult('snapshots rm', { snapshot: removed, seq: n, lockTable: null });
          else println(`removed ${printable(removed)} (damaged: ${printable((err as Error).message)})`);
          return 0;
        }
        if (seq === undefined && snap.dir !== ref.replace(/\/+$/, '') && !ref.endsWith(String(snap.seq).padStart(6, '0'))) {
          throw new UsageError('name the snapshot to remove: its directory, or the store with --seq N');
        }
        const removed = await removeSnapshotAndLeftovers(snap);
        if (json) printResult('snapshots rm', { snapshot: removed.dir, seq: snap.seq, lockTable: removed.lockTable ?? null });
        else println(`removed ${printable(removed.dir)}${removed.lockTable ? ` (and CRIU's network lock table ${removed.lockTable})` : ''}`);
        return 0;
      }
      case 'gc': {
        if (values.dir !== undefined && values.dir !== ref) throw new UsageError('name the store once: as the argument or with --dir');
        const dryRun = values['dry-run'] === true;
        const { removed, bytes } = collectGarbage(ref, { dryRun });
        if (json) printResult('snapshots gc', { removed, bytes, ...(dryRun ? { dryRun } : {}) });
        else {
          const verb = dryRun ? 'would remove' : 'removed';
          for (const r of removed) println(`${verb} ${printable(r.path)} (${formatBytes(r.bytes)})`);
          println(removed.length ? `${verb} ${removed.length} abandoned partial snapshot${removed.length > 1 ? 's' : ''}, ${formatBytes(bytes)}` : 'nothing to remove');
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown snapshots subcommand '${action}'`);
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
