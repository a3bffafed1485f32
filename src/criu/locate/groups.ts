// Unix groups by name and number: the for-users CRIU belongs to one group.
import { readFileSync } from 'node:fs';
import { runTool } from '../../util/spawn.js';
import { trustedTool } from '../../util/trusted-tool.js';
import { ErrorCodes, type CkptError } from '../../errors.js';

interface GroupEntry {
  name: string;
  gid: number;
}

/** The entries of /etc/group (none when it cannot be read). */
function groupFile(): GroupEntry[] {
  try {
    const out: GroupEntry[] = [];
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id !== undefined && /^\d+$/.test(id)) out.push({ name, gid: Number(id) });
    }
    return out;
  } catch {
    return [];
  }
}

/** A group's name (from /etc/group), or its number. */
export function groupName(gid: number): string {
  return groupFile().find((g) => g.gid === gid)?.name ?? String(gid);
}

/** A group's gid: a number as is, else from /etc/group, else from `getent` (LDAP, sssd). */
export async function groupId(group: string): Promise<number | undefined> {
  if (/^\d+$/.test(group)) return Number(group);
  const local = groupFile().find((g) => g.name === group);
  if (local) return local.gid;
  try {
    const r = await runTool(trustedTool('getent'), ['group', group], { timeoutMs: 10_000 });
    const id = r.stdout.split(':')[2];
    if (r.code === 0 && id && /^\d+$/.test(id)) return Number(id);
  } catch (err) {
    // No getent; but a getent another user could replace is said so.
    if ((err as CkptError).code === ErrorCodes.PERMISSION) throw err;
  }
  return undefined;
}
