// A list of ranks for one line of text, however many there are.

/** "1, 2, 3 … (40 in all)" so an error about 256 ranks stays one line. */
export function abbreviateRanks(ranks: number[]): string {
  return ranks.length <= 8 ? ranks.join(', ') : `${ranks.slice(0, 8).join(', ')} … (${ranks.length} in all)`;
}
