// A snapshot store: a directory of numbered, committed snapshots.
//
//   STORE/                 0700
//     000001/              committed: manifest.json + the checkpointer's files
//     000002/
//     .partial-000003-…/   being written; never listed, never restored
//
// A snapshot is written under a temporary name, its files fsynced, its manifest
// written last, then the directory is renamed into place and the store fsynced.
// Every write goes through descriptors opened once (util/dirfd.ts), and every read of
// a snapshot starts with a check of who wrote it (trust.ts): a store or snapshot is a
// directory another user may control, and ckpt often runs as root.
import { closeSync, existsSync, fsyncSync, type Stats, lstatSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { realpathSync } from 'node:fs';
import { ErrorCodes, SnapshotError, errnoCode, type ErrorCode } from '../errors.js';
import { DirFd, openNoFollow } from '../util/dirfd.js';
import { fsyncPrivateAsync, mkdirPrivate, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fsx.js';
import { entryChecksum, hashBytes, hashFile, hashFiles, listFiles, type FileEntry } from './checksum.js';
import { MANIFEST_NAME, validateManifest, type Manifest, type ManifestDraft, type ProcessManifest, type JobManifest } from './manifest.js';
import { assertWritableStore, snapshotOwner, type SnapshotOwner } from './trust.js';

const SEQ_NAME = /^\d{6,}$/;
const PARTIAL_PREFIX = '.partial-';
/** `.partial-<seq>-<hex>[-<pid>@<host>]`: the writer's pid and host let a dead writer's leftovers be swept. */
const PARTIAL_NAME = /^\.partial-(\d+)-(?:rm-)?[0-9a-f]+(?:-(\d+)@(.+))?$/;
/** The largest manifest read (a job of 256 ranks with large environments stays far below). */
export const MAX_MANIFEST_BYTES = 64 << 20;

export const seqName = (seq: number): string => String(seq).padStart(6, '0');
const writerTag = (): string => `${process.pid}@${hostname()}`;

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
function noSpace(err: unknown, what: string): never {
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

function seqsIn(dir: string): { committed: number[]; partial: number[] } {
  const committed: number[] = [];
  const partial: number[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    return noSpace(err, 'reading the store');
  }
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
function openDir(path: string, what: string, notDir: ErrorCode = ErrorCodes.SNAPSHOT_MISSING): DirFd {
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

/**
 * Removes the partial directories of writers that are gone (their pid no longer runs
 * on this host): what a killed checkpoint left. Returns their names.
 */
export function sweepPartials(store: DirFd): string[] {
  const host = hostname();
  const swept: string[] = [];
  for (const name of readdirSync(store.at())) {
    const m = PARTIAL_NAME.exec(name);
    if (!m || m[2] === undefined || m[3] !== host || existsSync(`/proc/${m[2]}`)) continue;
    rmSync(store.at(name), { recursive: true, force: true });
    swept.push(name);
  }
  return swept;
}

/** Reserves the next sequence number of a store (created 0700 if missing). */
export function beginSnapshot(storePath: string): PendingSnapshot {
  const store = resolve(storePath);
  // An existing directory keeps its mode (never chmod someone's /tmp or home), but it
  // must be ours and closed to others: we write into it, as root too.
  let createdStore = false;
  try {
    if (!existsSync(store)) {
      mkdirPrivate(store);
      createdStore = true;
    }
  } catch (err) {
    if (errnoCode(err) === 'ENOTDIR' || errnoCode(err) === 'EEXIST') {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `${store} is not a directory`, { cause: err });
    }
    noSpace(err, 'creating the snapshot store');
  }
  const storeFd = openDir(store, 'the snapshot store', ErrorCodes.SNAPSHOT_PATH);
  try {
    assertWritableStore(storeFd.stat, store);
    if (existsSync(storeFd.at(MANIFEST_NAME))) {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `${store} is itself a snapshot; give the store directory that holds it`);
    }
    sweepPartials(storeFd);
    const { committed, partial } = seqsIn(storeFd.at());
    let seq = Math.max(0, ...committed, ...partial) + 1;
    for (;;) {
      const name = `${PARTIAL_PREFIX}${seqName(seq)}-${randomBytes(4).toString('hex')}-${writerTag()}`;
      try {
        const dir = storeFd.mkdir(name, PRIVATE_DIR_MODE);
        return {
          store,
          seq,
          dir: dir.at(),
          path: join(store, name),
          finalDir: join(store, seqName(seq)),
          createdStore,
          handles: { store: storeFd, dir, name },
        };
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') noSpace(err, 'creating the snapshot directory');
        seq++;
      }
    }
  } catch (err) {
    storeFd.close();
    throw err;
  }
}

/**
 * Closes a pending snapshot's descriptors before the process that holds them dumps
 * itself with CRIU (an open descriptor on a directory that is renamed by the commit
 * could not be restored); `dir` is its name meanwhile. Reacquire before the commit.
 */
export function releasePending(pending: PendingSnapshot): void {
  const h = pending.handles;
  if (!h) return;
  pending.released = { name: h.name, store: h.store.stat, dir: h.dir.stat };
  closePending(pending, pending.path);
}

/** Opens a released pending snapshot again, and checks it is the very directory we made. */
export function reacquirePending(pending: PendingSnapshot): void {
  const r = pending.released;
  if (!r) return;
  const store = openDir(pending.store, 'the snapshot store');
  const dir = openDir(store.at(r.name), 'the snapshot directory');
  const same = (a: DirFd, b: Stats) => a.stat.dev === b.dev && a.stat.ino === b.ino;
  if (!same(store, r.store) || !same(dir, r.dir)) {
    store.close();
    dir.close();
    throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `${pending.path} was replaced while the checkpoint was written`);
  }
  pending.released = undefined;
  pending.handles = { store, dir, name: r.name };
  pending.dir = dir.at();
}

/** Closes the descriptors; `dir` then names `to` (a stale /proc/<pid>/fd/N could name a reused descriptor). */
function closePending(pending: PendingSnapshot, to: string): void {
  pending.handles?.dir.close();
  pending.handles?.store.close();
  pending.handles = undefined;
  pending.dir = to;
}

/**
 * Makes every file below `dir` durable (fsync, with the directories from `dir` up to
 * `root`) and returns their checksums relative to `root`: what a commit would do for
 * them, done by their writer (a job's rank, for its own images) so that the commit can
 * take them as they are (`CommitOptions.synced`).
 */
export async function syncFiles(root: string, dir: string): Promise<FileEntry[]> {
  const files = await listFiles(dir);
  const dirs = [...new Set([...files.map((f) => f.slice(0, f.lastIndexOf('/'))), dir, root])];
  const [entries] = await Promise.all([
    hashFiles(root, files),
    Promise.all([...files.map((f) => fsyncPrivateAsync(f, PRIVATE_FILE_MODE)), ...dirs.map((d) => fsyncPrivateAsync(d))]),
  ]);
  return entries;
}

/**
 * Writes one file of a pending snapshot from bytes in memory, private and fsynced
 * (its directory entry is made durable by the commit), and returns its entry for
 * `CommitOptions.synced`. A full disk is `ECKPT_NO_SPACE`.
 */
export async function writeSnapshotFile(pending: PendingSnapshot, name: string, bytes: Uint8Array): Promise<FileEntry> {
  try {
    writeExclusive(pending, name, bytes);
  } catch (err) {
    noSpace(err, `writing ${name}`);
  }
  return { path: name, size: bytes.byteLength, xxh64: await hashBytes(bytes) };
}

/** A new file in the pending snapshot: created exclusively (no planted link is followed), 0600, fsynced. */
function writeExclusive(pending: PendingSnapshot, name: string, data: string | Uint8Array): void {
  const h = pending.handles;
  const fd = h ? h.dir.createFile(name, PRIVATE_FILE_MODE) : undefined;
  if (fd === undefined) throw new SnapshotError(ErrorCodes.INTERNAL, 'the pending snapshot is not open');
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes the manifest (with checksums of every file) and renames the snapshot into place. */
export interface CommitOptions {
  onProgress?: (message: string) => void;
  /**
   * Files their writers already fsynced (with their directories) and hashed from
   * the bytes they wrote: a job's ranks, all at once. Taken as reported; every
   * other file is synced and hashed here.
   */
  synced?: FileEntry[];
  /** Subdirectories of the snapshot their writers already fsynced. */
  syncedDirs?: string[];
}

export async function commitSnapshot(pending: PendingSnapshot, manifest: ManifestDraft, options: CommitOptions = {}): Promise<Snapshot> {
  const { onProgress } = options;
  const h = pending.handles;
  if (!h) throw new SnapshotError(ErrorCodes.INTERNAL, 'the pending snapshot is not open');
  try {
    const files = await listFiles(pending.dir);
    const known = new Map((options.synced ?? []).map((e) => [join(pending.dir, e.path), e]));
    const reused = new Map<string, FileEntry>();
    let bytes = 0;
    for (const f of files) {
      // A file its writer reported (synced, hashed, with its size) is taken as reported:
      // a stat per file cost ~3 ms for a 16-rank criu job's 400 images (verify and every
      // restart check sizes and checksums against the disk). Any other file is synced
      // and hashed here.
      const k = known.get(f);
      const size = k?.size ?? lstatSync(f).size;
      bytes += size;
      if (k) reused.set(f, k);
    }
    const todo = files.filter((f) => !reused.has(f));
    onProgress?.(`syncing and checksumming ${files.length} files (${(bytes / 1e6).toFixed(1)} MB)`);
    // Both at once: fsync waits on the disk in libuv's pool while the hashes are computed.
    // Files their writers synced were made private by them; the rest are made so here,
    // through their own descriptor (opened without following a link) as they are synced.
    // Subdirectories (a job's rank-N/) are synced too, all at once: one journal commit, not N.
    const syncedDirs = new Set((options.syncedDirs ?? []).map((d) => join(pending.dir, d)));
    const dirs = [...new Set(files.map((f) => f.slice(0, f.lastIndexOf('/'))))].filter((d) => d !== pending.dir);
    const [hashed] = await Promise.all([
      hashFiles(pending.dir, todo),
      Promise.all([
        ...todo.map((f) => fsyncPrivateAsync(f, PRIVATE_FILE_MODE)),
        ...dirs.map((d) => fsyncPrivateAsync(d, PRIVATE_DIR_MODE, !syncedDirs.has(d))),
      ]),
    ]);
    const byPath = new Map(hashed.map((e, i) => [todo[i]!, e]));
    const entries = files.map((f) => reused.get(f) ?? byPath.get(f)!);
    const full: Manifest = {
      ...manifest,
      seq: pending.seq,
      committedAt: new Date().toISOString(),
      files: entries,
    } as Manifest;
    // No temporary name needed: a partial snapshot is never opened, manifest or not.
    // Synchronous fsyncs: one after another they cost less here than two at once
    // through libuv's pool (measured: 1.7 vs 2.1 ms with a temporary name, 2.6 in the pool).
    writeExclusive(pending, MANIFEST_NAME, `${JSON.stringify(full, null, 2)}\n`);
    fsyncSync(h.dir.fd);
    renameSync(h.store.at(h.name), h.store.at(seqName(pending.seq)));
    fsyncSync(h.store.fd);
    closePending(pending, pending.finalDir);
    return { store: pending.store, seq: pending.seq, dir: pending.finalDir, manifest: full };
  } catch (err) {
    return noSpace(err, 'committing the snapshot');
  }
}

/** Removes a snapshot that will not be committed. */
export function abortSnapshot(pending: PendingSnapshot): void {
  const h = pending.handles;
  // Through the store's descriptor while we hold it; by name once released (a self-dump).
  rmSync(h ? h.store.at(h.name) : pending.path, { recursive: true, force: true });
  closePending(pending, pending.path);
  if (pending.createdStore) {
    try {
      rmdirSync(pending.store);
    } catch {
      // not empty (another snapshot arrived meanwhile): keep it
    }
  }
}

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

export interface VerifyResult {
  ok: boolean;
  files: number;
  bytes: number;
  problems: string[];
}

/** Checks that every file the manifest lists is there, regular, of its size and checksum. */
export async function verifySnapshot(snapshot: Snapshot): Promise<VerifyResult> {
  const problems: string[] = [];
  let bytes = 0;
  for (const f of snapshot.manifest.files) {
    const path = snapshotPath(snapshot, f.path);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      problems.push(`${f.path}: missing`);
      continue;
    }
    if (!st.isFile()) {
      problems.push(`${f.path}: not a regular file`);
      continue;
    }
    if (st.size !== f.size) {
      problems.push(`${f.path}: size ${st.size}, expected ${f.size}`);
      continue;
    }
    bytes += st.size;
    const sum = entryChecksum(f);
    if ((await hashFile(path, sum.algorithm)) !== sum.value) problems.push(`${f.path}: checksum mismatch`);
  }
  return { ok: problems.length === 0, files: snapshot.manifest.files.length, bytes, problems };
}

/** Like verifySnapshot, but throws a one-line SnapshotError on the first problem. */
export async function assertIntact(snapshot: Snapshot): Promise<void> {
  const result = await verifySnapshot(snapshot);
  if (!result.ok) {
    const more = result.problems.length > 1 ? ` (and ${result.problems.length - 1} more)` : '';
    throw new SnapshotError(ErrorCodes.SNAPSHOT_CORRUPT, `snapshot ${snapshot.dir} is damaged: ${result.problems[0]}${more}`, {
      details: { problems: result.problems },
      hint: 'run `ckpt snapshots verify` for the full list',
    });
  }
}

/** Closes the descriptor an opened snapshot is read through (a long-lived process opening many). */
export function closeSnapshot(snapshot: Snapshot): void {
  if (snapshot.io === undefined) return;
  opened.get(snapshot.io)?.close();
  opened.delete(snapshot.io);
  snapshot.io = undefined;
}

export function removeSnapshot(snapshot: Snapshot): void {
  closeSnapshot(snapshot);
  // Through the store's descriptor, renamed first so a half-removed snapshot is never
  // mistaken for a committed one (and its name left for a sweep if we die meanwhile).
  const store = openDir(snapshot.store, 'the snapshot store');
  try {
    const trash = `${PARTIAL_PREFIX}${seqName(snapshot.seq)}-rm-${randomBytes(4).toString('hex')}-${writerTag()}`;
    renameSync(store.at(seqName(snapshot.seq)), store.at(trash));
    rmSync(store.at(trash), { recursive: true, force: true });
  } finally {
    store.close();
  }
}
