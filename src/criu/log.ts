// Reading CRIU's log: cr_errmsg usually holds only the first logged error, which on
// these machines is a harmless RLIMIT_NOFILE complaint; the real cause is further down.
import { readFileSync } from 'node:fs';

const HARMLESS = [
  /Can't setup RLIMIT_NOFILE/,
  /Can't keep kdat cache/,
  // Dumping or restoring a network namespace probes iptables, which these machines lack.
  /execvp\("ip6?tables(-legacy)?-(save|restore)"/,
  /ip6?tables(-legacy)?-(save|restore) -V failed/,
];

/** The `Error (…)` lines of a CRIU log, harmless ones left out, prefixes stripped. */
export function criuErrorLines(logPath: string, max = 8): string[] {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /Error \(([^)]*)\):\s*(.*)$/.exec(line);
    if (!m || HARMLESS.some((re) => re.test(line))) continue;
    out.push(`${m[2]!.trim()} (${m[1]})`);
  }
  return out.slice(0, max);
}

/** CRIU's statistics lines we care about, e.g. `frozen_time` from a dump log with display_stats. */
export function criuLogTail(logPath: string, lines = 20): string[] {
  try {
    return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines);
  } catch {
    return [];
  }
}
