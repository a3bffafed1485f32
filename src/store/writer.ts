// The snapshot writer: how a component or a rank puts files into a snapshot being
// written — durable, private and checksummed — whatever holds the snapshot. Today a
// local (or shared) directory; compression and remote stores plug in here as other
// writers (docs/ARCHITECTURE.md, "Add a snapshot backend"). Node-local staging
// (--stage) is a copy after the cut instead (store/stage.ts, runtime/staging.ts).
import { closeSync, constants as fsConstants, fsyncSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { chmodPrivateDir, fsyncPath, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../util/fsx.js';
import { hashBytes, type FileEntry } from './checksum.js';
import { noSpace, type PendingSnapshot } from './layout.js';
import { syncFiles, writeSnapshotFile } from './write.js';

export interface SnapshotWriter {
  /** Where files of this writer go; a tool that writes by itself (CRIU) is pointed at `path(sub)`. */
  path(sub?: string): string;
  /** Creates the writer's directory (private); false if the snapshot is gone (an aborted checkpoint). */
  open(): boolean;
  /** A new file from bytes: created exclusively, 0600, fsynced; its entry relative to the writer. */
  writeFile(name: string, data: Uint8Array): Promise<FileEntry>;
  /** Files someone else wrote (CRIU's images) below `sub`, or in the whole directory: fsynced and checksummed, entries relative to the writer. */
  syncTree(sub?: string): Promise<FileEntry[]>;
  /** Makes the writer's directory entries durable. */
  finish(): void;
}

/** A writer for directory `dir` (an absolute path inside a pending snapshot: a rank's `rank-N`). */
export function directoryWriter(dir: string): SnapshotWriter {
  const path = below(dir);
  return {
    path,
    open() {
      // Only inside the snapshot's directory as it is: if the checkpoint was aborted
      // and that directory removed, nothing may bring it back.
      try {
        mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return false;
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      chmodPrivateDir(dir);
      return true;
    },
    async writeFile(name, data) {
      let fd: number | undefined;
      try {
        fd = openSync(join(dir, name), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, PRIVATE_FILE_MODE);
        writeFileSync(fd, data);
        fsyncSync(fd);
      } catch (err) {
        noSpace(err, `writing ${name}`);
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      return { path: name, size: data.byteLength, xxh64: await hashBytes(data) };
    },
    async syncTree(sub) {
      return syncFiles(dir, path(sub));
    },
    finish() {
      fsyncPath(dir);
    },
  };
}

/**
 * A writer for the top of a pending snapshot (the coordinator's own files: ranks.pack),
 * through its descriptors. Its files are made durable by the commit, with the manifest.
 */
export function pendingWriter(pending: PendingSnapshot): SnapshotWriter {
  const path = below(pending.dir);
  return {
    path,
    open: () => true,
    writeFile: (name, data) => writeSnapshotFile(pending, name, data),
    syncTree: (sub) => syncFiles(pending.dir, path(sub)),
    finish() {},
  };
}

/** `sub` below `dir`, or `dir` itself. */
function below(dir: string): (sub?: string) => string {
  return (sub) => (sub ? join(dir, sub) : dir);
}
