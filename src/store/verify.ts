// Verifying a snapshot: every file the manifest lists is there, regular, of its size
// (the layout: cheap, checked before anything is restored) and of its checksum (the
// contents: checked while a restore runs, see Verification). Files are read through
// the snapshot's checked descriptor (snapshotPath), as the restore reads them.
import { closeSync, lstatSync } from 'node:fs';
import { openFileBelow } from '../util/dirfd.js';
import { ErrorCodes, SnapshotError } from '../errors.js';
import { entryChecksum, hashFile, type FileEntry } from './checksum.js';
import { snapshotPath, type Snapshot } from './layout.js';

export interface VerifyResult {
  ok: boolean;
  files: number;
  bytes: number;
  problems: string[];
}

/** Files hashed at once: a snapshot of many small files (a job's) is not read one by one. */
const HASHERS = 3;

/** The layout problems of the listed files (missing, not regular, wrong size); the bytes of the good ones. */
function layoutProblems(snapshot: Snapshot, files: FileEntry[]): { problems: string[]; good: FileEntry[]; bytes: number } {
  const problems: string[] = [];
  const good: FileEntry[] = [];
  let bytes = 0;
  for (const f of files) {
    let st;
    try {
      st = lstatSync(snapshotPath(snapshot, f.path));
    } catch {
      problems.push(`${f.path}: missing`);
      continue;
    }
    if (!st.isFile()) problems.push(`${f.path}: not a regular file`);
    else if (st.size !== f.size) problems.push(`${f.path}: size ${st.size}, expected ${f.size}`);
    else {
      bytes += st.size;
      good.push(f);
    }
  }
  return { problems, good, bytes };
}

/** The files whose contents do not match their checksum. */
async function contentProblems(snapshot: Snapshot, files: FileEntry[]): Promise<string[]> {
  const bad: boolean[] = new Array(files.length).fill(false);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      const sum = entryChecksum(files[i]!);
      // Read through a descriptor opened without following any link (its owner may swap a directory meanwhile).
      let opened: { fd: number };
      try {
        opened = openFileBelow(snapshotPath(snapshot), files[i]!.path);
      } catch {
        bad[i] = true; // swapped for a link or a special file since the layout was checked
        continue;
      }
      try {
        bad[i] = (await hashFile(`/proc/self/fd/${opened.fd}`, sum.algorithm)) !== sum.value;
      } finally {
        closeSync(opened.fd);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASHERS, files.length) }, worker));
  return files.filter((_, i) => bad[i]).map((f) => `${f.path}: checksum mismatch`);
}

/** Checks that every file the manifest lists is there, regular, of its size and checksum. */
export async function verifySnapshot(snapshot: Snapshot): Promise<VerifyResult> {
  const files = snapshot.manifest.files;
  const layout = layoutProblems(snapshot, files);
  const problems = [...layout.problems, ...(await contentProblems(snapshot, layout.good))];
  return { ok: problems.length === 0, files: files.length, bytes: layout.bytes, problems };
}

function damaged(snapshot: Snapshot, problems: string[]): SnapshotError {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  return new SnapshotError(ErrorCodes.SNAPSHOT_CORRUPT, `snapshot ${snapshot.dir} is damaged: ${problems[0]}${more}`, {
    details: { problems },
    hint: 'run `ckpt snapshots verify` for the full list',
  });
}

/** Like verifySnapshot, but throws a one-line SnapshotError (ECKPT_SNAPSHOT_CORRUPT) on the first problem. */
export async function assertIntact(snapshot: Snapshot): Promise<void> {
  const result = await verifySnapshot(snapshot);
  if (!result.ok) throw damaged(snapshot, result.problems);
}

/**
 * A verification running beside a restore. The layout was checked when it began (a
 * snapshot with a missing or truncated file never starts restoring); the checksums
 * are computed meanwhile. Whoever restores holds the restored processes until
 * `done` resolves — CRIU at its post-restore stage, a self job's coordinator before
 * its welcome — and ends them if it rejects (ECKPT_SNAPSHOT_CORRUPT).
 */
export interface Verification {
  /** Resolves when every checksum matched; rejects with the SnapshotError otherwise. */
  readonly done: Promise<void>;
  /** Waits for the outcome: the error if the snapshot is damaged, else undefined. */
  failure(): Promise<SnapshotError | undefined>;
}

/**
 * Checks the layout now (throws ECKPT_SNAPSHOT_CORRUPT) and starts checking the
 * contents — of every file, or of those `only` keeps (a node's ranks').
 */
export function beginVerification(snapshot: Snapshot, only?: (path: string) => boolean): Verification {
  const layout = layoutProblems(snapshot, only ? snapshot.manifest.files.filter((f) => only(f.path)) : snapshot.manifest.files);
  if (layout.problems.length) throw damaged(snapshot, layout.problems);
  const done = contentProblems(snapshot, layout.good).then(
    (problems) => {
      if (problems.length) throw damaged(snapshot, problems);
    },
    (err: Error) => {
      throw damaged(snapshot, [`cannot be read (${err.message})`]);
    },
  );
  // Handled here: a restore that fails first may never wait for the outcome.
  done.catch(() => {});
  return {
    done,
    failure: () => done.then(() => undefined, (err: SnapshotError) => err),
  };
}
