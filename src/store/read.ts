// Reading snapshots (verifying them: verify.ts): each is opened once, checked for who wrote it (trust.ts), and
// read through that descriptor; the manifest is read without following a link, without
// blocking on a FIFO, and never past MAX_MANIFEST_BYTES.
import { closeSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ErrorCodes, SnapshotError, errnoCode } from '../errors.js';
import { DirFd, openNoFollow } from '../util/dirfd.js';
import { MANIFEST_NAME, validateManifest, type Manifest } from './manifest.js';
import { snapshotOwner } from './trust.js';
import { MAX_MANIFEST_BYTES, noSpace, openDir, PARTIAL_PREFIX, SEQ_NAME, seqName, seqsIn, type Snapshot } from './layout.js';

export * from './verify.js';

/**
 * Reads and validates a snapshot's manifest through the snapshot's descriptor: never
 * through a link, never blocking on a FIFO, never more than MAX_MANIFEST_BYTES.
 */
function readManifest(dir: DirFd): Manifest {
  let opened;
  try {
    opened = openNoFollow(dir.at(MANIFEST_NAME));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_INCOMPLETE, `${dir.name} has no manifest: the snapshot is incomplete`, { cause: err });
    }
    if (errnoCode(err) === 'ELOOP') {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `the manifest of ${dir.name} is a symbolic link: refused`, { cause: err });
    }
    return noSpace(err, `reading the manifest of ${dir.name}`);
  }
  let text: string;
  try {
    const { fd, stat } = opened;
    if (!stat.isFile()) throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `the manifest of ${dir.name} is not a regular file`);
    if (stat.size > MAX_MANIFEST_BYTES) {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `the manifest of ${dir.name} is ${stat.size} bytes, over the limit of ${MAX_MANIFEST_BYTES}`);
    }
    text = readFileSync(fd, 'utf8');
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    return noSpace(err, `reading the manifest of ${dir.name}`);
  } finally {
    closeSync(opened.fd);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `the manifest of ${dir.name} is not valid JSON`, { cause: err });
  }
  return validateManifest(json);
}

/** A snapshot still (or forever) under its temporary name is never opened, even if it holds a manifest. */
function refusePartial(path: string): void {
  if (basename(path).startsWith(PARTIAL_PREFIX)) {
    throw new SnapshotError(ErrorCodes.SNAPSHOT_INCOMPLETE, `${path} was never committed: the snapshot is incomplete`);
  }
}

/** The real path of what the user named (links in it resolved: what is opened is then checked). */
function realPath(ref: string, what: string): string {
  const path = resolve(ref);
  try {
    return realpathSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_MISSING, `no ${what} at ${path}`, { cause: err });
    }
    return noSpace(err, `opening ${path}`);
  }
}

export interface OpenOptions {
  /** A sequence of the store; default the newest committed one. */
  seq?: number;
  /** Accept a snapshot written by another user (see trust.ts). */
  trustOwner?: boolean;
}

/** Whether the directory holds a manifest entry (of any kind: what kind is checked when it is read). */
const hasManifest = (dir: DirFd): boolean => {
  try {
    lstatSync(dir.at(MANIFEST_NAME));
    return true;
  } catch {
    return false;
  }
};

/**
 * Finds a snapshot by reference: a committed snapshot directory itself, or a store
 * (its newest committed snapshot, or sequence `seq`). It is opened once, checked for
 * who wrote it (every file), and read through that descriptor from then on (`io`).
 */
export function openSnapshot(ref: string, options: OpenOptions = {}): Snapshot {
  // Opened by its real path, named as the user named it.
  const named = resolve(ref);
  refusePartial(named);
  const path = realPath(ref, 'snapshot');
  refusePartial(path);
  const top = openDir(path, named);
  let dir = top;
  let store = dirname(named);
  let seq = options.seq;
  try {
    if (!hasManifest(top)) {
      store = named;
      const { committed, partial } = seqsIn(top.at());
      if (seq !== undefined && !committed.includes(seq)) {
        const why = partial.includes(seq) ? 'was never committed' : 'does not exist';
        throw new SnapshotError(ErrorCodes.SNAPSHOT_MISSING, `sequence ${seq} of ${named} ${why}`);
      }
      seq ??= committed.at(-1);
      if (seq === undefined) {
        const seqDir = SEQ_NAME.test(basename(path)) && partial.length === 0;
        const why = partial.length ? 'holds only incomplete snapshots' : seqDir ? 'has no manifest: the snapshot is incomplete' : 'holds no snapshot';
        throw new SnapshotError(ErrorCodes.SNAPSHOT_INCOMPLETE, `${named} ${why}`);
      }
      dir = openDir(top.at(seqName(seq)), join(named, seqName(seq)));
    }
    const owner = snapshotOwner(dir, { trustOwner: options.trustOwner });
    const manifest = readManifest(dir);
    // A numbered directory holds the snapshot of its number: removal and retention go by it.
    const base = basename(dir.name);
    if (SEQ_NAME.test(base) && Number(base) !== manifest.seq) {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `invalid manifest: ${dir.name} holds sequence ${manifest.seq}, not ${Number(base)}`);
    }
    if (dir === top && options.seq !== undefined && options.seq !== manifest.seq) {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_MISSING, `${named} is sequence ${manifest.seq}, not ${options.seq}`);
    }
    opened.set(dir.at(), dir);
    return { store, seq: manifest.seq, dir: dir.name, manifest, io: dir.at(), owner };
  } catch (err) {
    dir.close();
    throw err;
  } finally {
    if (dir !== top) top.close();
  }
}

/** The descriptors of opened snapshots, by their `io` path. */
const opened = new Map<string, DirFd>();

export interface ListedSnapshot {
  seq: number;
  dir: string;
  manifest?: Manifest;
  error?: string;
}

/** The committed snapshots of a store, oldest first (partial ones are never listed). */
export function listSnapshots(storePath: string): ListedSnapshot[] {
  const store = resolve(storePath);
  refusePartial(store);
  const top = openDir(realPath(storePath, 'snapshot store'), store);
  try {
    if (hasManifest(top)) {
      const manifest = readManifest(top);
      return [{ seq: manifest.seq, dir: store, manifest }];
    }
    return seqsIn(top.at()).committed.map((seq) => {
      const dir = join(store, seqName(seq));
      let fd: DirFd | undefined;
      try {
        fd = openDir(top.at(seqName(seq)), dir);
        return { seq, dir, manifest: readManifest(fd) };
      } catch (err) {
        return { seq, dir, error: err instanceof Error ? err.message : String(err) };
      } finally {
        fd?.close();
      }
    });
  } finally {
    top.close();
  }
}

/** Closes the descriptor an opened snapshot is read through (a long-lived process opening many). */
export function closeSnapshot(snapshot: Snapshot): void {
  if (snapshot.io === undefined) return;
  opened.get(snapshot.io)?.close();
  opened.delete(snapshot.io);
  snapshot.io = undefined;
}

/** The newest committed snapshot of a store whose manifest `matches`, opened; undefined if none (or no store). */
export function newestSnapshot(store: string, matches: (m: Manifest) => boolean): Snapshot | undefined {
  let listed;
  try {
    listed = listSnapshots(store);
  } catch {
    return undefined;
  }
  const found = [...listed].reverse().find((l) => l.manifest !== undefined && matches(l.manifest));
  return found ? openSnapshot(found.dir) : undefined;
}
