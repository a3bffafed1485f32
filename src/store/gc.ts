// Garbage in a store: the partial directories (`.partial-<seq>-<hex>-<pid>@<host>`,
// layout.ts) of writers that died before their commit or abort — a killed ckpt, a
// crashed coordinator. Swept by the next write to the store and by `ckpt snapshots gc`.
// Only entries named as partials, whose writer (its pid on this host, in the name) is
// gone; removed through directory descriptors, never following a link: a store may be
// a directory another user prepared.
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ErrorCodes, errnoCode } from '../errors.js';
import type { DirFd } from '../util/dirfd.js';
import { removeTree } from '../util/remove-tree.js';
import { assertWritableStore } from './trust.js';
import { openDir, PARTIAL_NAME } from './layout.js';

export interface RemovedPartial {
  /** The partial directory, as named in the store. */
  path: string;
  /** The bytes of its files. */
  bytes: number;
}

export interface GarbageReport {
  removed: RemovedPartial[];
  /** All of them together. */
  bytes: number;
}

/** Boot time (s since the epoch) and clock ticks per second: what turns a /proc start time into a date. */
const CLOCK_TICKS = 100;
function bootTime(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** When a process started (ms since the epoch), or undefined when it is gone. */
function startedAt(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const boot = bootTime();
  // Field 22 (starttime), the 20th after the command name.
  const ticks = Number(fields[19]);
  return boot === undefined || !Number.isFinite(ticks) ? 0 : boot * 1000 + (ticks * 1000) / CLOCK_TICKS;
}

/**
 * Whether the writer of a partial directory may still be at work: its pid runs here and
 * started before the directory was last changed (a later process with that pid is not
 * its writer). Clock skew between the two readings is allowed for generously.
 */
function writerMayLive(pid: number, dir: Stats): boolean {
  const started = startedAt(pid);
  if (started === undefined) return false;
  return started <= dir.mtimeMs + 60_000;
}

/** The partial directories of `store` whose writers are gone (never one of a live writer or of another host). */
function deadPartials(store: DirFd, names: string[]): string[] {
  const host = hostname();
  const dead: string[] = [];
  for (const name of names) {
    const m = PARTIAL_NAME.exec(name);
    if (!m || m[2] === undefined || m[3] !== host) continue;
    let st: Stats;
    try {
      st = lstatSync(store.at(name));
    } catch {
      continue;
    }
    if (!st.isDirectory() || writerMayLive(Number(m[2]), st)) continue;
    dead.push(name);
  }
  return dead;
}

/**
 * Removes (or, with `dryRun`, only measures) the partial directories of dead writers in
 * an open store; `names`: its entries, when the caller has just listed them.
 */
export function sweepPartials(store: DirFd, options: { dryRun?: boolean } = {}, names = readdirSync(store.at())): GarbageReport {
  const removed: RemovedPartial[] = [];
  for (const name of deadPartials(store, names)) {
    try {
      removed.push({ path: join(store.name, name), bytes: removeTree(store, name, options.dryRun === true) });
    } catch (err) {
      // Gone meanwhile (another sweep): nothing to report.
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  return { removed, bytes: removed.reduce((n, r) => n + r.bytes, 0) };
}

/**
 * `ckpt snapshots gc`: removes what dead writers left in a store (with `dryRun`, says
 * what it would remove). The store must be ours and closed to others.
 */
export function collectGarbage(storePath: string, options: { dryRun?: boolean } = {}): GarbageReport {
  const path = resolve(storePath);
  const store = openDir(path, 'the snapshot store', ErrorCodes.SNAPSHOT_PATH);
  try {
    assertWritableStore(store.stat, path);
    return sweepPartials(store, options);
  } finally {
    store.close();
  }
}
