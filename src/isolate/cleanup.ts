// What a failed (or stopped) CRIU operation can leave behind, and how ckpt removes
// exactly that and nothing else:
// - CRIU's nftables lock table `inet CRIU-<run id>` — named after the dump's run id
//   (inventory.img), in the host's network namespace for a job without --net, in
//   the job's own for a job with --net;
// - processes of a half-done restore: with rst_sibling they are children of the
//   restoring process, so they are told apart from everything else by parentage.
import { setTimeout as sleep } from 'node:timers/promises';
export { listLockTables, lockTableName, removeLockTable } from '../criu/lock-table.js';
import { native } from '../util/native.js';
import { readdirSync, readlinkSync } from 'node:fs';
import { childrenOf, readStat } from '../util/procfs.js';
import { signalPid } from '../util/signals.js';

function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** Our current children (to tell later which ones a restore added). */
export function ourChildren(): Set<number> {
  return new Set(childrenOf(process.pid));
}

/**
 * Kills and reaps the children that appeared since `before` — the roots of a
 * half-restored tree. SIGKILL to a pid namespace's init ends the whole namespace.
 */
export async function killNewChildren(before: Set<number>, excluding: number[] = [], options: { criu?: boolean } = {}): Promise<number[]> {
  const killed: number[] = [];
  const reap: number[] = [];
  const namespaces = new Set<string>();
  for (const pid of childrenOf(process.pid)) {
    if (before.has(pid) || excluding.includes(pid) || pid <= 1) continue;
    // A (half-)restored root lives in a pid namespace of its own (its name may still
    // be "criu"); in ours, only a hung criu of this operation, when asked for.
    const ours = pidNamespace(pid) === pidNamespace(process.pid);
    if (ours && !(options.criu && readStat(pid)?.comm === 'criu')) continue;
    const ns = ours ? undefined : pidNamespace(pid);
    if (ns) namespaces.add(ns);
    signalPid(pid, 'SIGKILL');
    killed.push(pid);
    if (!ours) reap.push(pid);
  }
  // Reap the restored roots: Node does not know them (rst_sibling), and a zombie would
  // keep its namespace's pid 1 around. A criu Node spawned is Node's to reap.
  await Promise.all(
    reap.map((pid) => Promise.race([native().waitpid(pid).catch(() => undefined), sleep(5000)])),
  );
  // Processes of a dying namespace may take a moment to go (a restorer mid-way).
  const deadline = Date.now() + 5000;
  while (namespaces.size && Date.now() < deadline && pidsInNamespaces(namespaces).length) await sleep(50);
  return killed;
}

/** Every pid whose pid namespace is one of `namespaces`. */
export function pidsInNamespaces(namespaces: Set<string>): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ns = pidNamespace(Number(name));
    if (ns && namespaces.has(ns)) out.push(Number(name));
  }
  return out;
}
