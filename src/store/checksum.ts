// Checksums of snapshot files. They guard against corruption and truncation, not
// against an attacker (who could rewrite the manifest as well), so new snapshots use
// XXH64 from the native addon (~7x faster than SHA-256 here, which cost more than
// CRIU's own dump). Manifests with SHA-256 entries still verify.
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { lstat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';

export type ChecksumAlgorithm = 'xxh64' | 'sha256';
export const CHECKSUM_ALGORITHM: ChecksumAlgorithm = 'xxh64';

let xxh64: ((what: string | Buffer) => Promise<string>) | undefined;

function nativeXxh64(): (what: string | Buffer) => Promise<string> {
  if (xxh64) return xxh64;
  try {
    xxh64 = (createRequire(import.meta.url)('../../build/Release/ckpt_hash.node') as { xxh64: typeof xxh64 }).xxh64!;
  } catch (cause) {
    throw new CkptError(ErrorCodes.NATIVE, 'the native checksum addon is not built', { cause, hint: 'run `npm install`' });
  }
  return xxh64;
}

/** The checksum of a file's contents: 16 hex digits (xxh64) or 64 (sha256). */
export async function hashFile(path: string, algorithm: ChecksumAlgorithm = CHECKSUM_ALGORITHM): Promise<string> {
  if (algorithm === 'xxh64') return nativeXxh64()(path);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The checksum of bytes about to be written (what the file will hash to). */
export async function hashBytes(data: Uint8Array): Promise<string> {
  return nativeXxh64()(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

export interface FileEntry {
  /** Relative to the snapshot directory, always with '/' separators. */
  path: string;
  size: number;
  /** Exactly one checksum: xxh64 (what ckpt writes) or sha256. */
  xxh64?: string;
  sha256?: string;
}

/** The algorithm and value an entry carries. */
export function entryChecksum(entry: FileEntry): { algorithm: ChecksumAlgorithm; value: string } {
  return entry.xxh64 !== undefined ? { algorithm: 'xxh64', value: entry.xxh64 } : { algorithm: 'sha256', value: entry.sha256 ?? '' };
}

/**
 * Every regular file below `dir` (links and devices are refused: CRIU writes neither).
 * Synchronous underneath: a snapshot has a few directories, and one readdir each on
 * the thread pool cost ~0.1 ms apiece in a job's commit, on its critical path.
 */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  function walk(d: string): void {
    // Byte order, not the locale's: the same on every machine, and localeCompare cost
    // ~2 ms for a 16-rank criu job's 400 image files.
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(p);
      else throw new Error(`unexpected non-regular file in snapshot: ${p}`);
    }
  }
  walk(dir);
  return out;
}

/** Checksums of the given files, a few at a time (the disk, not the CPU, is the limit). */
export async function hashFiles(root: string, files: string[], onProgress?: (done: number, total: number) => void): Promise<FileEntry[]> {
  const entries: FileEntry[] = new Array(files.length);
  let next = 0;
  let done = 0;
  async function worker(): Promise<void> {
    while (next < files.length) {
      const i = next++;
      const file = files[i]!;
      const [sum, st] = await Promise.all([hashFile(file), lstat(file)]);
      entries[i] = { path: relative(root, file).split(sep).join('/'), size: st.size, [CHECKSUM_ALGORITHM]: sum };
      onProgress?.(++done, files.length);
    }
  }
  await Promise.all([worker(), worker(), worker()]);
  return entries;
}
