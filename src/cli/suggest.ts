// "Did you mean": another tool's habit first (CRIU's -t, DMTCP's -i), else the
// nearest option by edit distance, else a unique prefix.
import type { CommandSpec } from './spec/types.js';

/** Edit distance with transpositions (optimal string alignment), small strings only. */
export function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let before = prev;
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      // Two letters swapped count as one slip (crui → criu).
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      cur.push(d);
    }
    [before, prev] = [prev, cur];
  }
  return prev[b.length]!;
}

/** The nearest of `words` to `word`, when near enough to be a slip. */
export function nearest(word: string, words: readonly string[]): string | undefined {
  const bare = word.replace(/^-+/, '');
  const prefixed = words.filter((w) => bare.length >= 2 && w.replace(/^-+/, '').startsWith(bare));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const w of words) {
    const d = distance(word, w);
    if (d < bestD) [best, bestD] = [w, d];
  }
  return bestD <= Math.max(1, Math.floor(bare.length / 3)) ? best : undefined;
}

/** The spellings of a table's options: `--pid`, `-p`. */
export function optionWords(spec: CommandSpec): string[] {
  return Object.entries(spec.options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
}

/** The hint for an unknown option as written: "did you mean '--pid'?" or a habit's own sentence. */
export function suggestOption(raw: string, spec: CommandSpec): string | undefined {
  const habit = spec.habits?.[raw];
  if (habit !== undefined) return /^-\S+$/.test(habit) ? `did you mean '${habit}'?` : habit;
  // A single-letter typo of a short option is as likely another option: only long ones are guessed.
  const near = raw.startsWith('--') || raw.length > 2 ? nearest(raw, optionWords(spec).filter((w) => w.startsWith('--'))) : undefined;
  return near ? `did you mean '${near}'?` : undefined;
}
