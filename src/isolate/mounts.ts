// Host mounts inside a job's user namespace. A job in a user namespace (see
// namespace-init.ts) sees the host's mounts as copies; a restore inside a user
// namespace cannot mount most file systems afresh (devtmpfs, ext4, xfs, a bind
// of a host device's file system…: `Operation not permitted`). Such mounts are
// declared external at the dump, each under a key derived from its mount point,
// and mapped back to the same host path at restore: CRIU then bind-mounts the
// host's directory there instead of mounting a new file system.
import { readFileSync } from 'node:fs';
import { IO_MOUNT } from './namespace-init.js';

/** File systems a process may mount inside a user namespace it owns (FS_USERNS_MOUNT). */
const USERNS_MOUNTABLE = new Set(['tmpfs', 'ramfs', 'proc', 'devpts', 'mqueue', 'cgroup2', 'binfmt_misc']);

export interface MountEntry {
  id: number;
  parent: number;
  /** major:minor of the file system. */
  dev: string;
  /** The mount's root within its file system. */
  root: string;
  mountPoint: string;
  fsType: string;
}

/** `/proc/<pid>/mountinfo`, mount point and file system type per line (octal escapes decoded). */
export function readMounts(pid: number | 'self'): MountEntry[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return [];
  }
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const fields = left!.split(' ');
    const unescape = (v: string | undefined) => v?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const mountPoint = unescape(fields[4]);
    const root = unescape(fields[3]);
    const fsType = right?.split(' ')[0];
    if (mountPoint && fsType && root) out.push({ id: Number(fields[0]), parent: Number(fields[1]), dev: fields[2] ?? '', root, mountPoint, fsType });
  }
  return out;
}

/** CRIU's key for the host mount at `mountPoint`. */
export function hostMountKey(mountPoint: string): string {
  return `ckpt-host${mountPoint.replace(/[^\w.-]/g, '_')}`;
}

/**
 * The host mounts to declare external: those that cannot be mounted anew inside a
 * user namespace (sysfs only when the job shares the host's network namespace:
 * sysfs belongs to one). Never `/` (the restore's root) or the output directory.
 */
export function externalHostMounts(mounts: MountEntry[], net: boolean, host: MountEntry[] = mounts): string[] {
  const seen = new Set<string>();
  const isHost = (m: MountEntry) => host.some((h) => h.mountPoint === m.mountPoint && h.dev === m.dev && h.root === m.root);
  const hasChildren = (m: MountEntry) => mounts.some((c) => c.parent === m.id && c.id !== m.id);
  for (const m of mounts) {
    if (m.mountPoint === '/' || m.mountPoint === IO_MOUNT || m.mountPoint.includes(']')) continue;
    // A host tmpfs with submounts (a container's /dev) would be dumped by unmounting
    // its submounts, which are locked in the job's user namespace: bound instead.
    const lockedTmpfs = m.fsType === 'tmpfs' && hasChildren(m) && isHost(m);
    if (!lockedTmpfs && (USERNS_MOUNTABLE.has(m.fsType) || (net && m.fsType === 'sysfs'))) continue;
    seen.add(m.mountPoint);
  }
  return [...seen];
}

/** `external` entries of a dump: `mnt[<mount point>]:<key>`. */
export function dumpMountExternals(rootPid: number, net: boolean): string[] {
  return externalHostMounts(readMounts(rootPid), net, readMounts('self')).map((mp) => `mnt[${mp}]:${hostMountKey(mp)}`);
}

/**
 * `external` entries of a restore: every host mount that a dump on this machine
 * would have declared, mapped to itself (`mnt[<key>]:<mount point>`). CRIU uses
 * those the images name.
 */
export function restoreMountExternals(net: boolean): string[] {
  return externalHostMounts(readMounts('self'), net).map((mp) => `mnt[${hostMountKey(mp)}]:${mp}`);
}
