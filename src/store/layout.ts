// The snapshot store's layout and the pieces its reading and writing share: what a
// snapshot and a pending one are, sequence names, how file-system errors become codes.
//
//   STORE/                 0700
//     000001/              committed: manifest.json + the checkpointer's files
//     000002/
//     .partial-000003-<hex>-<pid>@<host>/   being written; never listed, never restored
//
// Every write goes through descriptors opened once (util/dirfd.ts, write.ts), and every
// read of a snapshot starts with a check of who wrote it (trust.ts, read.ts): a store or
// snapshot is a directory another user may control, and ckpt often runs as root.
import { readdirSync, type Stats } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, SnapshotError, errnoCode, type ErrorCode } from '../errors.js';
import { DirFd } from '../util/dirfd.js';
import type { Manifest, ProcessManifest, JobManifest } from './manifest.js';
import type { SnapshotOwner } from './trust.js';

export const SEQ_NAME = /^\d{6,}$/;
export const PARTIAL_PREFIX = '.partial-';
/** `.partial-<seq>-<hex>[-<pid>@<host>]`: the writer's pid and host let a dead writer's leftovers be swept. */
export const PARTIAL_NAME = /^\.partial-(\d+)-(?:rm-)?[0-9a-f]+(?:-(\d+)@(.+))?$/;
/** The largest manifest read (a job of 256 ranks with large environments stays far below). */
export const MAX_MANIFEST_BYTES = 64 << 20;

export const seqName = (seq: number): string => String(seq).padStart(6, '0');
export const writerTag = (): string => `${process.pid}@${hostname()}`;

export interface PendingSnapshot {
  /** The store, as named (for messages and records). */
  store: string;
  seq: number;
  /**
   * The temporary directory being written, as a path through our descriptor
   * (`/proc/<pid>/fd/N`): every writer (CRIU, ranks, components) goes through it.
   */
  dir: string;
  /** The temporary directory's name, for messages. */
  path: string;
  /** Where it will be once committed. */
  finalDir: string;
  /** The store did not exist before: an aborted first snapshot removes it again. */
  createdStore?: boolean;
  /** @internal files written for the commit to make durable with its manifest (their descriptors; closed by commit and abort). */
  unsynced?: number[];
  /** @internal the descriptors behind `dir` (closed by commit and abort). */
  handles?: { store: DirFd; dir: DirFd; name: string };
  /** @internal while released (a self-dump): what the reopened directories must be. */
  released?: { name: string; store: Stats; dir: Stats };
}

export interface Snapshot<M extends Manifest = Manifest> {
  store: string;
  seq: number;
  /** Its directory, as named (for messages and records). */
  dir: string;
  manifest: M;
  /** Its directory through the descriptor it was opened and checked with: read files through this. */
  io?: string;
  /** Who wrote it (see trust.ts). */
  owner?: SnapshotOwner;
  /** Just committed: how long the commit's last step waited on the disk (manifest, directory, store fsyncs), ms. */
  syncMs?: number;
}

/** A file or directory of a snapshot, for reading: through its checked descriptor when it has one. */
export function snapshotPath(snapshot: Pick<Snapshot, 'dir' | 'io'>, ...rel: string[]): string {
  return join(snapshot.io ?? snapshot.dir, ...rel);
}

export type ProcessSnapshot = Snapshot<ProcessManifest>;

export type JobSnapshot = Snapshot<JobManifest>;

export function isProcessSnapshot(s: Snapshot): s is ProcessSnapshot {
  return s.manifest.kind === 'process';
}

export function isJobSnapshot(s: Snapshot): s is JobSnapshot {
  return s.manifest.kind === 'job';
}

/** File-system failures the user can act on become one-line errors with their own codes. */
export function noSpace(err: unknown, what: string): never {
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    throw new SnapshotError(ErrorCodes.NO_SPACE, `${what}: no space left on the snapshot's file system`, { cause: err });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    const path = (err as { path?: string }).path;
    throw new SnapshotError(ErrorCodes.PERMISSION, `${what}: permission denied${path && !path.startsWith('/proc/') ? ` (${path})` : ''}`, { cause: err });
  }
  if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'EISDIR') {
    throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `${what}: not a directory or file of its own (a symbolic link or a special file)`, { cause: err });
  }
  throw err;
}

export function seqsIn(dir: string): { committed: number[]; partial: number[] } {
  return seqsOf(storeEntries(dir));
}

/** A store's entries (a full disk or quota is `ECKPT_NO_SPACE`, as for every write). */
export function storeEntries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    return noSpace(err, 'reading the store');
  }
}

/** The committed and partial sequence numbers among a store's entries. */
export function seqsOf(names: string[]): { committed: number[]; partial: number[] } {
  const committed: number[] = [];
  const partial: number[] = [];
  for (const name of names) {
    if (SEQ_NAME.test(name)) committed.push(Number(name));
    else if (name.startsWith(PARTIAL_PREFIX)) {
      const n = Number(name.slice(PARTIAL_PREFIX.length).split('-')[0]);
      if (Number.isSafeInteger(n)) partial.push(n);
    }
  }
  return { committed: committed.sort((a, b) => a - b), partial };
}

/** Opens a directory by name (a link as its last component is refused), mapping errors to codes. */
export function openDir(path: string, what: string, notDir: ErrorCode = ErrorCodes.SNAPSHOT_MISSING): DirFd {
  const name = path.startsWith('/proc/') ? what : path;
  try {
    return DirFd.open(path, name);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new SnapshotError(ErrorCodes.SNAPSHOT_MISSING, `no snapshot at ${name}`, { cause: err });
    if (code === 'ENOTDIR') throw new SnapshotError(notDir, `${name} is not a directory`, { cause: err });
    if (code === 'ELOOP') throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `${name} is a symbolic link: refused`, { cause: err });
    return noSpace(err, `opening ${what}`);
  }
}

