// Watching CRIU's images directory while it dumps: one poll on an interval, through
// the pending snapshot's directory descriptor, serves two ends.
//  - Progress: bytes written so far, the rate, and a time left when the size is known.
//  - The commit overlapped with the dump: page images (`pages-*.img`, by far the bulk)
//    are hashed as they grow (a running XXH64 per file) and their writeback started
//    (sync_file_range), so that after the dump only their tails are left to hash and
//    flush. Only page images: CRIU writes each once, sequentially, and never goes back;
//    the small images (inventory.img is rewritten at the end) are hashed by the commit.
//    A page image that shrank or was replaced is hashed in full by the commit as well:
//    the manifest is the one the commit alone would write.
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync } from 'node:fs';
import { DirFd } from '../util/dirfd.js';
import { streamHash, type FileEntry, type StreamHash } from './checksum.js';

/** What a checkpoint has written so far. */
export interface WriteProgress {
  /** Bytes in the images so far. */
  bytes: number;
  /** What the dump is expected to write (the tree's private resident memory), when known. */
  expectedBytes?: number;
  /** Since the first byte. */
  bytesPerSecond: number;
  /** Time left at this rate, while below the expected size. */
  etaMs?: number;
  /** Since the watch began. */
  elapsedMs: number;
}

export interface ImageWatchOptions {
  /** The pending snapshot's directory descriptor and the images' subdirectory in it. */
  dir: DirFd;
  sub: string;
  /** Hash and write back page images while they are written. */
  overlap: boolean;
  expectedBytes?: number;
  intervalMs?: number;
  onProgress?: (progress: WriteProgress) => void;
}

const PAGES = /^pages-\d+\.img$/;
/** Hash a page image once this much more of it is there (fewer, larger reads). */
const STEP = 8 << 20;

interface Tracked {
  fd: number;
  ino: number;
  hash: StreamHash;
  busy?: Promise<void>;
  /** Shrank, or failed to read: the commit hashes it in full. */
  spoilt?: boolean;
}

export class ImageWatcher {
  private images?: DirFd;
  private readonly files = new Map<string, Tracked>();
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();
  private firstByteAt?: number;
  private polling = false;
  private closed = false;
  /** Bytes seen at the last poll. */
  bytes = 0;

  constructor(private readonly o: ImageWatchOptions) {
    this.timer = setInterval(() => this.poll(), o.intervalMs ?? 50);
    this.timer.unref();
  }

  /** One look at the directory: sizes for progress, new page images opened, growth hashed. */
  poll(): void {
    if (this.closed || this.polling) return;
    this.polling = true;
    try {
      this.images ??= this.openImages();
      if (!this.images) return;
      let bytes = 0;
      for (const name of readdirSync(this.images.at())) {
        const t = this.files.get(name) ?? (this.o.overlap && PAGES.test(name) ? this.track(name) : undefined);
        const size = t ? fstatSync(t.fd).size : sizeOf(this.images.at(name));
        bytes += size;
        if (t) this.advance(t, size);
      }
      this.report(bytes);
    } catch {
      // The directory went away (an aborted checkpoint) or a file is unreadable: the commit decides.
    } finally {
      this.polling = false;
    }
  }

  private openImages(): DirFd | undefined {
    try {
      return DirFd.open(this.o.dir.at(this.o.sub), this.o.sub);
    } catch {
      return undefined; // not made yet
    }
  }

  /** Opened through the images' descriptor, never following a link; regular files only. */
  private track(name: string): Tracked | undefined {
    const fd = openSync(this.images!.at(name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      return undefined;
    }
    const t: Tracked = { fd, ino: st.ino, hash: streamHash() };
    this.files.set(name, t);
    return t;
  }

  private advance(t: Tracked, size: number): void {
    if (t.spoilt || t.busy) return;
    if (size < t.hash.hashed) {
      t.spoilt = true;
      return;
    }
    if (size - t.hash.hashed < STEP) return;
    t.busy = t.hash.advance(t.fd, size, true).then(
      () => (t.busy = undefined),
      () => {
        t.spoilt = true;
        t.busy = undefined;
      },
    );
  }

  private report(bytes: number): void {
    this.bytes = bytes;
    if (bytes > 0) this.firstByteAt ??= Date.now();
    if (!this.o.onProgress || bytes === 0) return;
    const now = Date.now();
    const secs = Math.max(1, now - (this.firstByteAt ?? now)) / 1000;
    const rate = bytes / secs;
    const expected = this.o.expectedBytes;
    this.o.onProgress({
      bytes,
      ...(expected ? { expectedBytes: expected } : {}),
      bytesPerSecond: Math.round(rate),
      ...(expected && expected > bytes && rate > 0 ? { etaMs: Math.round(((expected - bytes) / rate) * 1000) } : {}),
      elapsedMs: now - this.started,
    });
  }

  /** Stops watching; what was hashed stays until take() or close(). */
  stop(): void {
    clearInterval(this.timer);
    this.closed = true;
  }

  /**
   * The entry of a page image (`path` relative to the snapshot), its hash finished
   * from where the watch left it; undefined when it must be hashed in full (not
   * watched, shrank, or no longer the file that was watched).
   */
  async take(path: string): Promise<FileEntry | undefined> {
    const name = path.startsWith(`${this.o.sub}/`) ? path.slice(this.o.sub.length + 1) : '';
    const t = this.files.get(name);
    if (!t) return undefined;
    await t.busy;
    if (t.spoilt || fstatSync(t.fd).size < t.hash.hashed || lstatSync(this.images!.at(name)).ino !== t.ino) return undefined;
    try {
      const { xxh64, size } = await t.hash.finish(t.fd);
      return { path, size, xxh64 };
    } catch {
      return undefined;
    }
  }

  /** Ends the watch and closes every descriptor (before the snapshot is renamed or removed). */
  async close(): Promise<void> {
    this.stop();
    await Promise.allSettled([...this.files.values()].map((t) => t.busy));
    for (const t of this.files.values()) closeSync(t.fd);
    this.files.clear();
    this.images?.close();
    this.images = undefined;
  }
}

function sizeOf(path: string): number {
  try {
    return lstatSync(path).size;
  } catch {
    return 0;
  }
}
