// Snapshot helpers shared by the store, trust and periodic-checkpoint tests: a
// manifest draft to commit by hand, what a store holds while a series is being
// written, and a snapshot committed by hand and given to another user.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beginSnapshot, commitSnapshot, listSnapshots, type ListedSnapshot } from '../../dist/store/store.js';
import type { TestUser } from './users.js';
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

/** A process manifest draft: `crs` none restarts by running `argv` in `cwd`. */
export function draft(argv: string[], cwd: string, crs = 'none'): Json {
  return manifestDraft({ crs: { name: crs, version: 'test' }, endState: 'terminate', origin: 'self' }, { argv, cwd, env: { PATH: '/usr/bin:/bin' } });
}

/**
 * A committed snapshot in a new store under `base`; returns the store. Written in a
 * directory of the caller's own and moved into `base`: as root ckpt keeps nothing in
 * another user's directory (a test's "user" then owns it: giveTo).
 */
export async function snapshotIn(base: string, manifest: Json, files: Record<string, string> = {}): Promise<string> {
  const store = join(base, `store-${readdirSync(base).length}`);
  const scratch = mkdtempSync(join(tmpdir(), 'ckpt-snap-'));
  const made = join(scratch, 'store');
  const pending = beginSnapshot(made);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(pending.dir, name, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(join(pending.dir, name), content, { mode: 0o600 });
  }
  await commitSnapshot(pending, manifest as never);
  renameSync(made, store);
  rmdirSync(scratch);
  return store;
}

/** Gives a whole tree to the user: what they could have made (and edited) themselves. */
export function giveTo(path: string, user: TestUser): void {
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, path]);
}
