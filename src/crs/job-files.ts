// What job components share on the coordinator's side: a rank's directory in the
// snapshot, and the files a rank reports it made durable itself.
import type { FileEntry } from '../store/checksum.js';

/** Rank r's directory, relative to the snapshot. */
export const rankDirName = (rank: number): string => `rank-${rank}`;

/**
 * What a rank reports it wrote, fsynced and hashed; anything malformed is left out
 * (the commit then syncs and hashes that file again). Paths stay inside the rank's
 * directory: self reports names, criu paths one level down (images/…).
 */
export function syncedFiles(rank: number, files: unknown): FileEntry[] {
  if (!Array.isArray(files)) return [];
  return files.flatMap((f: { name?: unknown; path?: unknown; size?: unknown; xxh64?: unknown }) => {
    const rel = typeof f?.path === 'string' ? f.path : f?.name;
    const ok = typeof rel === 'string' && /^[\w.-]+(\/[\w.-]+)?$/.test(rel) && !rel.split('/').some((p) => p === '..' || p === '.');
    return ok && Number.isInteger(f.size) && typeof f.xxh64 === 'string' && /^[0-9a-f]{16}$/.test(f.xxh64)
      ? [{ path: `${rankDirName(rank)}/${rel}`, size: f.size as number, xxh64: f.xxh64 }]
      : [];
  });
}

