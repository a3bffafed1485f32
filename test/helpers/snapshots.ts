// Snapshot helpers shared by the store and periodic-checkpoint tests: a manifest
// draft to commit by hand, and what a store holds while a series is being written.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { listSnapshots, type ListedSnapshot } from '../../dist/store/store.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION } from '../../dist/store/manifest.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A process manifest draft (`crs` none restarts by running `argv` in `cwd`); `top` and `process` override its fields. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function manifestDraft(top: Json = {}, process: Json = {}): any {
  const pid = (process.pid as number | undefined) ?? 4242;
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    kind: 'process',
    createdAt: new Date().toISOString(),
    ckptVersion: 'test',
    crs: { name: 'none', version: 'test' },
    host: 'testhost',
    endState: 'continue',
    origin: 'external',
    data: {},
    ...top,
    process: { pid, tree: [pid], argv: ['/bin/true'], cwd: '/', env: {}, stdio: [null, null, null], uid: 0, ...process },
  };
}

/** The committed snapshots of a store; none while it does not exist yet. */
export function listedSnapshots(store: string): ListedSnapshot[] {
  try {
    return listSnapshots(store);
  } catch {
    return [];
  }
}

export const newestSeq = (store: string): number => Math.max(0, ...listedSnapshots(store).map((s) => s.seq));

/** n of a `tick n` line (NaN for any other line). */
export const tickOf = (line: string | undefined): number => Number(/^tick (\d+)$/.exec(line ?? '')?.[1] ?? NaN);

/** After `--keep K`: exactly the newest K snapshots are left, and no partial one; returns them. */
export function keptNewest(store: string, k: number): ListedSnapshot[] {
  const kept = listedSnapshots(store);
  const newest = newestSeq(store);
  assert.deepEqual(kept.map((s) => s.seq), Array.from({ length: k }, (_, i) => newest - k + 1 + i), `exactly the newest ${k}`);
  assert.ok(readdirSync(store).every((n) => !n.startsWith('.partial')), 'no partial snapshot left');
  return kept;
}
