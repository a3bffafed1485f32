// The ring job of the Slurm tests (test/jobs/exchange's program across nodes): its
// checksums, an uninterrupted local run's, waiting for its ranks at their gate, and
// the node agents found through /proc.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { ckptProgram } from '../helpers.js';
import { program } from '../jobs/exchange.js';

export const ITERS = 200;

/** The `[rank] rank R checksum X` lines of a job's output, by rank. */
export function checksums(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of text.matchAll(/^\[(\d+)\] rank \d+ checksum (\d+)$/gm)) out.set(Number(m[1]), m[2]!);
  return out;
}

/** The checksums of an uninterrupted run of `n` ranks on this host. */
export async function uninterrupted(n: number): Promise<Map<number, string>> {
  const p = ckptProgram(['run', '-n', String(n), '--', process.execPath, program], { ITERS: String(ITERS) });
  assert.equal((await p.exited).code, 0, p.stderr);
  return checksums(p.lines.join('\n'));
}

/** Waits until `p`'s output shows `n` ranks at the gate, or back there (a criu rank wakes inside its gate loop). */
export async function gated(p: { stdout: () => string; stderr: () => string; exited: Promise<unknown> }, n: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void p.exited.then(() => (ended = true));
  for (;;) {
    const text = p.stdout() + p.stderr();
    if ((text.match(/ gated | restarted at iteration /g) ?? []).length >= n) return;
    if (ended || Date.now() > deadline) throw new Error(`${ended ? 'the job ended' : 'timed out'} before ${n} ranks were at the gate:\n${p.stdout()}\n${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Host pids of the node agent of `node` (its unshare and the agent itself; bundle main.cjs or tsc's main.js), found through /proc. */
export function agentPids(node: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!(pid > 1)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (/\/agent\/main\.c?js\0/.test(cmd) && env.includes(`SLURMD_NODENAME=${node}`)) pids.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
