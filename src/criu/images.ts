// Reading the few facts ckpt needs from CRIU's own image files: the statistics a
// dump or restore leaves (`stats-dump`, `stats-restore`), the dump's run id
// (`inventory.img`), which names the nftables table that locks its connections, and
// the processes it dumped (`pstree.img`).
// Image layout: one or two 32-bit magics, then entries of (u32 LE size, protobuf).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

const IMG_COMMON_MAGIC = 0x54564319;
const IMG_SERVICE_MAGIC = 0x55105940;

/** The entries of an image file, or undefined when the file is missing or malformed (an entry cut short). */
function entries(path: string, max = Infinity): Uint8Array[] | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return undefined;
  }
  if (buf.length < 8) return undefined;
  const magic = buf.readUInt32LE(0);
  let off = magic === IMG_COMMON_MAGIC || magic === IMG_SERVICE_MAGIC ? 8 : 4;
  const out: Uint8Array[] = [];
  while (off < buf.length && out.length < max) {
    if (buf.length < off + 4) return undefined;
    const size = buf.readUInt32LE(off);
    if (buf.length < off + 4 + size) return undefined;
    out.push(buf.subarray(off + 4, off + 4 + size));
    off += 4 + size;
  }
  return out;
}

/** The first entry of an image file, or undefined when the file is missing or malformed. */
function firstEntry(path: string): Uint8Array | undefined {
  return entries(path, 1)?.[0];
}

function fields(bytes: Uint8Array, visit: (r: BinaryReader, no: number, wt: WireType) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (!visit(r, no, wt)) r.skip(wt, no);
  }
}

export interface DumpStats {
  /** Microseconds, as CRIU counts them. */
  freezingTimeUs: number;
  frozenTimeUs: number;
  memdumpTimeUs: number;
  memwriteTimeUs: number;
  pagesScanned: number;
  pagesWritten: number;
}

export interface RestoreStats {
  forkingTimeUs: number;
  restoreTimeUs: number;
  pagesRestored: number;
}

function uint(r: BinaryReader): number {
  return Number(r.uint64());
}

/** `stats-dump` of an images directory (StatsEntry.dump). */
export function readDumpStats(imagesDir: string): DumpStats | undefined {
  const entry = firstEntry(join(imagesDir, 'stats-dump'));
  if (!entry) return undefined;
  return statsEntry(entry, 1, { 1: 'freezingTimeUs', 2: 'frozenTimeUs', 3: 'memdumpTimeUs', 4: 'memwriteTimeUs', 5: 'pagesScanned', 7: 'pagesWritten' });
}

/** `stats-restore` (StatsEntry.restore); CRIU writes it into the images directory. */
export function readRestoreStats(imagesDir: string): RestoreStats | undefined {
  const entry = firstEntry(join(imagesDir, 'stats-restore'));
  if (!entry) return undefined;
  return statsEntry(entry, 2, { 3: 'forkingTimeUs', 4: 'restoreTimeUs', 5: 'pagesRestored' });
}

/**
 * One sub-message of a StatsEntry (1: dump, 2: restore) as the named counters:
 * `keys` maps field numbers to names; absent counters read 0.
 */
function statsEntry<K extends string>(entry: Uint8Array, field: number, keys: Record<number, K>): Record<K, number> | undefined {
  const s = Object.fromEntries(Object.values(keys).map((k) => [k, 0])) as Record<K, number>;
  let found = false;
  try {
    fields(entry, (r, no) => {
      if (no !== field) return false;
      found = true;
      fields(r.bytes(), (d, n) => {
        const key = keys[n];
        if (!key) return false;
        s[key] = uint(d);
        return true;
      });
      return true;
    });
  } catch {
    return undefined;
  }
  return found ? s : undefined;
}

/** The dump's criu_run_id (inventory field 13): CRIU's nftables lock table is `inet CRIU-<id>` (cut short). */
export function dumpRunId(imagesDir: string): string | undefined {
  const entry = firstEntry(join(imagesDir, 'inventory.img'));
  if (!entry) return undefined;
  let id: string | undefined;
  try {
    fields(entry, (r, no, wt) => {
      if (no !== 13 || wt !== WireType.LengthDelimited) return false;
      id = r.string();
      return true;
    });
  } catch {
    return undefined;
  }
  return id && /^[0-9A-Za-z-]+$/.test(id) ? id : undefined;
}

/**
 * The pids of the processes a dump wrote (`pstree.img`, one PstreeEntry each: field 1,
 * pid), its root first; undefined when the file is missing, malformed or holds none.
 * What the restore needs free, as CRIU saw the tree when it froze it.
 */
export function dumpedPids(imagesDir: string): number[] | undefined {
  const list = entries(join(imagesDir, 'pstree.img'));
  if (!list?.length) return undefined;
  const pids: number[] = [];
  try {
    for (const entry of list) {
      let pid: number | undefined;
      fields(entry, (r, no, wt) => {
        if (no !== 1 || wt !== WireType.Varint) return false;
        pid = r.uint32();
        return true;
      });
      if (pid === undefined || pid < 1) return undefined;
      pids.push(pid);
    }
  } catch {
    return undefined;
  }
  return pids;
}
