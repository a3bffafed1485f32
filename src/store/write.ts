// Writing a snapshot: a partial directory created and opened once, every file written
// and synced through descriptors, the manifest last, then an atomic rename into place
// and an fsync of the store. A store must be the caller's and closed to others.
import { closeSync, existsSync, fsync, fsyncSync, lstatSync, renameSync, rmdirSync, writeFileSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { basename, join, relative, resolve, sep } from 'node:path';
import { ErrorCodes, SnapshotError, errnoCode, throwIfInterrupted } from '../errors.js';
import { DirFd } from '../util/dirfd.js';
import { removeByName, removeTree } from '../util/remove-tree.js';
import { fsyncPrivateAsync, mkdirPrivate, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fsx.js';
import { hashBytes, hashFiles, listFiles, type FileEntry } from './checksum.js';
import { MANIFEST_NAME, validateManifest, type Manifest, type ManifestDraft } from './manifest.js';
import { assertWritableStore, euid } from './trust.js';
import type { ImageWatcher } from './image-watcher.js';
import { closeSnapshot } from './read.js';
import { sweepPartials } from './gc.js';
import { noSpace, openDir, PARTIAL_PREFIX, seqName, seqsOf, storeEntries, writerTag, type PendingSnapshot, type Snapshot } from './layout.js';

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
    // One listing for the check, the sweep and the next seq (a job's checkpoint pays for it in its pause).
    const names = storeEntries(storeFd.at());
    if (names.includes(MANIFEST_NAME)) {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `${store} is itself a snapshot; give the store directory that holds it`);
    }
    const swept = new Set(sweepPartials(storeFd, {}, names).removed.map((r) => basename(r.path)));
    const { committed, partial } = seqsOf(names.filter((n) => !swept.has(n)));
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
  // Files left for the commit to make durable are made so now: their descriptors go.
  for (const fd of pending.unsynced ?? []) fsyncSync(fd);
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
  for (const fd of pending.unsynced?.splice(0) ?? []) closeSync(fd);
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
 * Writes one file of a pending snapshot from bytes in memory, private, and returns
 * its entry for `CommitOptions.synced`. The commit makes it durable, with its
 * manifest: one wait on the disk for both. A full disk is `ECKPT_NO_SPACE`.
 */
export async function writeSnapshotFile(pending: PendingSnapshot, name: string, bytes: Uint8Array): Promise<FileEntry> {
  let fd: number | undefined;
  try {
    fd = createIn(pending, name);
    writeFileSync(fd, bytes);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    noSpace(err, `writing ${name}`);
  }
  (pending.unsynced ??= []).push(fd!);
  return { path: name, size: bytes.byteLength, xxh64: await hashBytes(bytes) };
}

/** A new file in the pending snapshot: created exclusively (no planted link is followed), 0600; its descriptor. */
function createIn(pending: PendingSnapshot, name: string): number {
  const fd = pending.handles?.dir.createFile(name, PRIVATE_FILE_MODE);
  if (fd === undefined) throw new SnapshotError(ErrorCodes.INTERNAL, 'the pending snapshot is not open');
  return fd;
}

const fsyncFd = promisify(fsync);

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
  /**
   * Subdirectories whose files are exactly the `synced` entries below them (their
   * writer listed them: a criu rank's images): not listed again (~1 ms of the commit
   * at 8 ranks on an idle machine, several under a checkpoint's load).
   */
  completeDirs?: string[];
  /** Aborted before the manifest is written (the point of no return): InterruptedError, nothing committed. */
  signal?: AbortSignal;
  /** The watch of CRIU's images during the dump: the page images it hashed as they were written (closed here). */
  watcher?: ImageWatcher;
}

/** Checksums of `todo`: from the watcher where it followed a file to its end, else read in full. */
async function hashTodo(root: string, todo: string[], watcher: ImageWatcher | undefined): Promise<FileEntry[]> {
  if (!watcher) return hashFiles(root, todo);
  watcher.stop();
  const rel = (f: string) => relative(root, f).split(sep).join('/');
  const taken = await Promise.all(todo.map((f) => watcher.take(rel(f))));
  const rest = todo.filter((_, i) => !taken[i]);
  const hashed = await hashFiles(root, rest);
  const byPath = new Map(rest.map((f, i) => [f, hashed[i]!]));
  return todo.map((f, i) => taken[i] ?? byPath.get(f)!);
}

export async function commitSnapshot(pending: PendingSnapshot, manifest: ManifestDraft, options: CommitOptions = {}): Promise<Snapshot> {
  const { onProgress } = options;
  const h = pending.handles;
  if (!h) throw new SnapshotError(ErrorCodes.INTERNAL, 'the pending snapshot is not open');
  try {
    const complete = new Set(options.completeDirs ?? []);
    const inComplete = (path: string) => {
      for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) if (complete.has(path.slice(0, i))) return true;
      return false;
    };
    const taken: FileEntry[] = [];
    const others: FileEntry[] = [];
    for (const e of options.synced ?? []) (complete.size && inComplete(e.path) ? taken : others).push(e);
    const completeDirs = new Set([...complete].map((d) => join(pending.dir, d)));
    const files = await listFiles(pending.dir, (d) => completeDirs.has(d));
    const known = new Map(others.map((e) => [join(pending.dir, e.path), e]));
    const reused = new Map<string, FileEntry>();
    let bytes = taken.reduce((n, e) => n + e.size, 0);
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
    onProgress?.(`syncing and checksumming ${files.length + taken.length} files (${(bytes / 1e6).toFixed(1)} MB)`);
    // Both at once: fsync waits on the disk in libuv's pool while the hashes are computed.
    // Files their writers synced were made private by them; the rest are made so here,
    // through their own descriptor (opened without following a link) as they are synced.
    // Subdirectories (a job's rank-N/) are synced too, all at once: one journal commit, not N.
    const syncedDirs = new Set((options.syncedDirs ?? []).map((d) => join(pending.dir, d)));
    const dirs = [...new Set(files.map((f) => f.slice(0, f.lastIndexOf('/'))))].filter((d) => d !== pending.dir);
    const [hashed] = await Promise.all([
      hashTodo(pending.dir, todo, options.watcher),
      Promise.all([
        ...todo.map((f) => fsyncPrivateAsync(f, PRIVATE_FILE_MODE)),
        // Directories their writers synced were made private by them too: nothing to open (a 24-rank criu job: 48, ~1.5 ms).
        ...dirs.filter((d) => !syncedDirs.has(d)).map((d) => fsyncPrivateAsync(d, PRIVATE_DIR_MODE)),
      ]),
    ]);
    await options.watcher?.close();
    const byPath = new Map(hashed.map((e, i) => [todo[i]!, e]));
    const entries = [...files.map((f) => reused.get(f) ?? byPath.get(f)!), ...taken];
    const full: Manifest = {
      ...manifest,
      seq: pending.seq,
      committedAt: new Date().toISOString(),
      files: entries,
    } as Manifest;
    // Checked as a reader will check it: nothing is committed that a restart would refuse.
    validateManifest(full);
    throwIfInterrupted(options.signal);
    // No temporary name needed: a partial snapshot is never opened, manifest or not.
    // The manifest, the files written for the commit (ranks.pack) and the directory's
    // entries are made durable at once, all before the rename: one wait on the disk,
    // not three (bench/README.md, "Jobs across nodes": on the shared 2-core VM, under
    // load, 4.4 ms against 10.1 one after another).
    const fd = createIn(pending, MANIFEST_NAME);
    let syncFrom = 0;
    try {
      writeFileSync(fd, `${JSON.stringify(full, null, 2)}\n`);
      syncFrom = performance.now();
      await Promise.all([fd, h.dir.fd, ...(pending.unsynced ?? [])].map((x) => fsyncFd(x)));
    } finally {
      closeSync(fd);
    }
    renameSync(h.store.at(h.name), h.store.at(seqName(pending.seq)));
    fsyncSync(h.store.fd);
    const syncMs = Math.round((performance.now() - syncFrom) * 100) / 100;
    closePending(pending, pending.finalDir);
    return { store: pending.store, seq: pending.seq, dir: pending.finalDir, manifest: full, syncMs };
  } catch (err) {
    return noSpace(err, 'committing the snapshot');
  }
}

/** Removes a snapshot that will not be committed. */
export function abortSnapshot(pending: PendingSnapshot): void {
  const h = pending.handles;
  // Through the store's descriptor while we hold it; by name once released (a self-dump).
  // Below it, through descriptors too: a link planted in it is removed, never followed.
  if (h) removeTree(h.store, h.name);
  else removeByName(pending.path);
  closePending(pending, pending.path);
  if (pending.createdStore) {
    try {
      rmdirSync(pending.store);
    } catch {
      // not empty (another snapshot arrived meanwhile): keep it
    }
  }
}


export function removeSnapshot(snapshot: Snapshot): void {
  closeSnapshot(snapshot);
  const store = openDir(snapshot.store, 'the snapshot store');
  try {
    // The directory it was opened from (a copy under another name is that copy, not its sequence's).
    removeFromStore(store, basename(snapshot.dir), snapshot.seq);
  } finally {
    store.close();
  }
}

/**
 * Removes snapshot `seq` of a store whatever its manifest holds: a damaged one that
 * openSnapshot refuses (`ckpt snapshots rm --force`). Only its numbered directory, a
 * real one (not a link), and one of the caller's (root: anyone's). Returns its path.
 */
export function removeDamagedSnapshot(storePath: string, seq: number): string {
  const name = seqName(seq);
  const path = join(storePath, name);
  const store = openDir(storePath, 'the snapshot store');
  try {
    const st = lstatSync(store.at(name), { throwIfNoEntry: false });
    if (!st) throw new SnapshotError(ErrorCodes.SNAPSHOT_MISSING, `sequence ${seq} of ${storePath} does not exist`);
    if (!st.isDirectory()) throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `${path} is not a directory: not removed`);
    if (euid() !== 0 && st.uid !== euid()) throw new SnapshotError(ErrorCodes.SNAPSHOT_OWNER, `${path} belongs to uid ${st.uid}: not removed`);
    removeFromStore(store, name, seq);
  } finally {
    store.close();
  }
  return path;
}

/** Through the store's descriptor, renamed first so a half-removed snapshot is never mistaken for a committed one (and its name left for a sweep if we die meanwhile). */
function removeFromStore(store: DirFd, entry: string, seq: number): void {
  const trash = `${PARTIAL_PREFIX}${seqName(seq)}-rm-${randomBytes(4).toString('hex')}-${writerTag()}`;
  renameSync(store.at(entry), store.at(trash));
  removeTree(store, trash);
}
