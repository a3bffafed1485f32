// Sizes and rates for people: decimal units (as `ls -h --si` and disks count), three
// significant digits, and never a size that reads 0 when it is not (218 → "218 B").

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** 218 → "218 B", 1_500 → "1.5 kB", 412_000_000 → "412 MB", 1_04e9 → "1.04 GB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '? B';
  let i = 0;
  let v = bytes;
  while (v >= 999.5 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  return `${v >= 99.95 ? v.toFixed(0) : v >= 9.995 ? v.toFixed(1) : v.toFixed(2)} ${UNITS[i]}`;
}

/** A rate: "420 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A duration: "850 ms", "2.3 s", "1 min 5 s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** "writing 412 MB of ~1.0 GB, 420 MB/s, ~1.4 s left" (a store/image-watcher WriteProgress). */
export function progressLine(p: { bytes: number; expectedBytes?: number; bytesPerSecond: number; etaMs?: number }): string {
  const of = p.expectedBytes ? ` of ~${formatBytes(p.expectedBytes)}` : '';
  const left = p.etaMs !== undefined ? `, ~${formatDuration(p.etaMs)} left` : '';
  return `writing ${formatBytes(p.bytes)}${of}, ${formatRate(p.bytesPerSecond)}${left}`;
}
