// CRIU's nftables lock table, `inet CRIU-<run id>`: named after the dump's run id
// (inventory.img), in the host's network namespace for a tree without a network
// namespace of its own, in the tree's own otherwise. A dump that kills its tree leaves
// it for the restore; whatever fails removes exactly that table and nothing else.
import { runTool } from '../util/spawn.js';
import { trustedTool } from '../util/trusted-tool.js';

/** CRIU formats `inet CRIU-<id>` into a 32-byte buffer: the table name is cut after 26 characters. */
export function lockTableName(runId: string): string {
  return `inet CRIU-${runId}`.slice(0, 31).slice('inet '.length);
}

async function nft(args: string[], netnsPid?: number) {
  // Run as root with CRIU: by paths nobody else could replace.
  const nftPath = trustedTool('nft');
  return netnsPid
    ? runTool(trustedTool('nsenter'), [`--net=/proc/${netnsPid}/ns/net`, '--', nftPath, ...args], { timeoutMs: 10_000 })
    : runTool(nftPath, args, { timeoutMs: 10_000 });
}

/** Names of CRIU's lock tables (`CRIU-…`) in the host's network namespace, or in that of `netnsPid`. */
export async function listLockTables(netnsPid?: number): Promise<string[]> {
  try {
    const r = await nft(['list', 'tables'], netnsPid);
    if (r.code !== 0) return [];
    return r.stdout
      .split('\n')
      .map((l) => /^table inet (CRIU-\S+)$/.exec(l.trim())?.[1])
      .filter((n): n is string => !!n);
  } catch {
    return [];
  }
}

/** Deletes the lock table of one CRIU run if it is there; true when one was removed. */
export async function removeLockTable(runId: string | undefined, netnsPid?: number): Promise<boolean> {
  if (!runId) return false;
  const name = lockTableName(runId);
  if (!(await listLockTables(netnsPid)).includes(name)) return false;
  try {
    const r = await nft(['delete', 'table', 'inet', name], netnsPid);
    return r.code === 0;
  } catch {
    return false;
  }
}
