// Checksums of snapshot files. They guard against corruption and truncation, not
// against an attacker (who could rewrite the manifest as well), so new snapshots use
// XXH64 (~7x faster than SHA-256 here, which cost more than CRIU's own dump).
// Manifests with SHA-256 entries still verify.
//
// XXH64 comes from the native addon when it is built (on libuv's thread pool), else
// from WebAssembly (xxhash-wasm, on this thread): the digests are identical, so a
// snapshot written with one verifies with the other. No build step is needed.
import { createHash } from 'node:crypto';
import { createReadStream, read, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { lstat, open } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';
import { nativeBuildHint, nativeDisabled } from '../util/native.js';
import { packageRoot } from '../util/package-root.js';

export type ChecksumAlgorithm = 'xxh64' | 'sha256';
export const CHECKSUM_ALGORITHM: ChecksumAlgorithm = 'xxh64';

type Xxh64 = (what: string | Buffer) => Promise<string>;
/** The addon's streaming half: a state buffer per file, advanced through a descriptor. */
interface NativeStream {
  xxh64Advance(state: Buffer, fd: number, end: number, writeback: boolean): Promise<number>;
  xxh64Finish(state: Buffer, fd: number): Promise<{ xxh64: string; size: number }>;
  xxh64StateSize: number;
}
type NativeHash = { xxh64: Xxh64; xxh64Sync?: (data: Buffer) => string } & Partial<NativeStream>;
/** Where XXH64 comes from: the native addon, or the WebAssembly fallback. */
export type Xxh64Backend = 'native' | 'wasm';

let chosen: { backend: Xxh64Backend; xxh64: Xxh64; loadError?: Error } | undefined;

/** The native addon's XXH64, or why it cannot be loaded. */
function loadNative(): Xxh64 | Error {
  const m = loadNativeModule();
  return m instanceof Error ? m : m.xxh64;
}

function loadNativeModule(): NativeHash | Error {
  if (nativeDisabled()) return new Error('disabled by CKPT_NO_NATIVE');
  try {
    return createRequire(import.meta.url)(`${packageRoot()}build/Release/ckpt_hash.node`) as NativeHash;
  } catch (cause) {
    return cause as Error;
  }
}

type Wasm = { create64(seed?: bigint): { update(input: Uint8Array): unknown; digest(): bigint } };
let wasm: Promise<Wasm> | undefined;

function loadWasm(): Promise<Wasm> {
  wasm ??= import('xxhash-wasm').then(
    (m) => m.default(),
    (cause) => {
      wasm = undefined;
      throw new CkptError(ErrorCodes.NATIVE, 'no XXH64 implementation: the native addon is not built and xxhash-wasm does not load', {
        cause,
        hint: `reinstall ckpt's dependencies (xxhash-wasm is one), or build the addon: ${nativeBuildHint()}`,
      });
    },
  );
  return wasm;
}

const hex = (v: bigint): string => v.toString(16).padStart(16, '0');
/** Read chunk of the fallback: large enough that a call costs nothing, small enough to keep the event loop live. */
const CHUNK = 1 << 20;

/** XXH64 in WebAssembly: of a file (read in 1 MiB chunks, the event loop turning between them) or of bytes. */
export async function wasmXxh64(what: string | Uint8Array): Promise<string> {
  const { create64 } = await loadWasm();
  const h = create64();
  if (typeof what !== 'string') {
    // In chunks: the module's memory grows to the largest update and never shrinks.
    for (let at = 0; at < what.byteLength; at += CHUNK) h.update(what.subarray(at, Math.min(at + CHUNK, what.byteLength)));
    return hex(h.digest());
  }
  const file = await open(what, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      h.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  return hex(h.digest());
}

/** XXH64 from the native addon (throws when it is not built). */
export async function nativeXxh64(what: string | Uint8Array): Promise<string> {
  const n = loadNative();
  if (n instanceof Error) throw n;
  return n(typeof what === 'string' ? what : Buffer.from(what.buffer, what.byteOffset, what.byteLength));
}

function xxh64(): Xxh64 {
  if (chosen) return chosen.xxh64;
  const n = loadNative();
  chosen = n instanceof Error ? { backend: 'wasm', xxh64: wasmXxh64, loadError: n } : { backend: 'native', xxh64: n };
  return chosen.xxh64;
}

/** Loads the XXH64 implementation now (a commit's, ahead of it: while CRIU dumps). */
export function preloadChecksums(): void {
  try {
    xxh64();
  } catch {
    // the commit meets the same failure, and reports it
  }
}

/** Which implementation computes XXH64 in this process (and why not the native one). */
export function checksumBackend(): { backend: Xxh64Backend; reason?: string } {
  xxh64();
  return chosen!.loadError ? { backend: chosen!.backend, reason: chosen!.loadError.message.split('\n')[0] } : { backend: chosen!.backend };
}

/**
 * XXH64 of a file as it grows (CRIU's page images while it writes them): `advance`
 * hashes what is there up to `end` through a descriptor (and may start its writeback),
 * `finish` the rest to the end of the file. The digest is the whole file's, as
 * hashFile would give it, provided the bytes already hashed were not changed since.
 * One call at a time per stream.
 */
export interface StreamHash {
  /** Bytes hashed so far (a multiple of 32 until finish). */
  readonly hashed: number;
  advance(fd: number, end: number, writeback: boolean): Promise<void>;
  finish(fd: number): Promise<{ xxh64: string; size: number }>;
}

/** A new stream: native when the addon has it, else WebAssembly (no writeback there). */
export function streamHash(): StreamHash {
  const m = xxh64() === wasmXxh64 ? undefined : loadNativeModule();
  if (m && !(m instanceof Error) && m.xxh64Advance && m.xxh64Finish && m.xxh64StateSize) return nativeStream(m as NativeHash & NativeStream);
  return wasmStream();
}

function nativeStream(m: NativeStream): StreamHash {
  const state = Buffer.alloc(m.xxh64StateSize);
  let hashed = 0;
  return {
    get hashed() {
      return hashed;
    },
    async advance(fd, end, writeback) {
      hashed = await m.xxh64Advance(state, fd, end, writeback);
    },
    async finish(fd) {
      const r = await m.xxh64Finish(state, fd);
      hashed = r.size;
      return r;
    },
  };
}

function wasmStream(): StreamHash {
  let h: ReturnType<Wasm['create64']> | undefined;
  let hashed = 0;
  const buf = Buffer.allocUnsafe(CHUNK);
  /** Reads and hashes from `hashed` up to `end` (Infinity: to the end of the file); only whole stripes unless `all`. */
  async function feed(fd: number, end: number, all: boolean): Promise<void> {
    h ??= (await loadWasm()).create64();
    const limit = all ? end : Math.floor(end / 32) * 32;
    while (hashed < limit) {
      const want = Math.min(CHUNK, limit - hashed);
      const bytesRead = await new Promise<number>((res, rej) => read(fd, buf, 0, want, hashed, (err, n) => (err ? rej(err) : res(n))));
      if (bytesRead === 0) break;
      // Whole stripes while the file grows: the final mix must see the true tail.
      const take = all ? bytesRead : bytesRead - (bytesRead % 32);
      if (take === 0) break;
      h.update(buf.subarray(0, take));
      hashed += take;
    }
  }
  return {
    get hashed() {
      return hashed;
    },
    advance: (fd, end) => feed(fd, end, false),
    async finish(fd) {
      await feed(fd, Infinity, true);
      return { xxh64: hex(h!.digest()), size: hashed };
    },
  };
}

/** The checksum of a file's contents: 16 hex digits (xxh64) or 64 (sha256). */
export async function hashFile(path: string, algorithm: ChecksumAlgorithm = CHECKSUM_ALGORITHM): Promise<string> {
  if (algorithm === 'xxh64') return xxh64()(path);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Up to this many bytes are hashed on this thread (native: ~10 GB/s, so ≤ 0.1 ms), not through the thread pool. */
const SYNC_HASH_BYTES = 1 << 20;
let nativeSync: ((data: Buffer) => string) | null | undefined;

/** The checksum of bytes about to be written (what the file will hash to). */
export async function hashBytes(data: Uint8Array): Promise<string> {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const hash = xxh64();
  if (bytes.byteLength <= SYNC_HASH_BYTES && hash !== wasmXxh64) {
    // An addon built before xxh64Sync existed has only the pool's.
    nativeSync ??= ((m) => (m instanceof Error ? null : (m.xxh64Sync ?? null)))(loadNativeModule());
    if (nativeSync) return nativeSync(bytes);
  }
  return hash(bytes);
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
export async function listFiles(dir: string, prune?: (dir: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  function walk(d: string): void {
    if (prune?.(d)) return;
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
