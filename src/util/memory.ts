// How much a dump of a process tree will write, estimated before it starts: the
// private resident memory of each process (statm: resident minus shared pages),
// read cheaply (no page-table walk, as smaps_rollup would do for a large process).
// File-backed clean pages are not dumped and are left out; shared memory is.
import { readFileSync } from 'node:fs';

const PAGE = 4096;

/** Bytes of private resident memory of `pids` (those gone or unreadable count 0). */
export function privateResidentBytes(pids: number[]): number {
  let pages = 0;
  for (const pid of pids) {
    try {
      const [, resident, shared] = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ').map(Number);
      if (resident !== undefined && shared !== undefined && resident >= shared) pages += resident - shared;
    } catch {
      // gone meanwhile
    }
  }
  return pages * PAGE;
}
