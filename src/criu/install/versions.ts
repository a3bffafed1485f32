// The versioned install directories under an install root (`criu-<version>`) and
// the `current` symlink naming the one in use, switched atomically so that a
// running criu and a concurrent findCriu never see a half-made install.
import { existsSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

/** The directory `<root>/current` points at, if any. */
export function currentTarget(root: string): string | undefined {
  try {
    return resolve(root, readlinkSync(join(root, 'current')));
  } catch {
    return undefined;
  }
}

/** Points `<root>/current` at dir atomically (a new symlink renamed over the old). */
export function switchCurrent(root: string, dir: string): void {
  const tmp = join(root, `.current-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(basename(dir), tmp);
  renameSync(tmp, join(root, 'current'));
}

/** Removes the temp dirs and links an interrupted install left (call only while holding the install lock). */
export function removeLeftovers(root: string): void {
  for (const name of readdirSync(root)) {
    if (name.startsWith('.tmp-') || name.startsWith('.current-')) rmSync(join(root, name), { recursive: true, force: true });
  }
}

/** A free directory for a package version: a leftover that did not qualify is removed, the one in use kept. */
export function versionDir(root: string, debVersion: string): string {
  const base = `criu-${debVersion.replace(/[^A-Za-z0-9.+~-]/g, '_')}`;
  const dir = join(root, base);
  if (!existsSync(dir)) return dir;
  if (currentTarget(root) === dir) return join(root, `${base}.${Date.now()}`);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

/** Removes every version but dir: once `current` has switched, none is referenced (a running criu keeps its open files). */
export function pruneVersions(root: string, dir: string, previous: string | undefined): void {
  for (const name of readdirSync(root)) {
    const p = join(root, name);
    if (name.startsWith('criu-') && p !== dir && p !== previous) rmSync(p, { recursive: true, force: true });
  }
  if (previous && previous !== dir && previous.startsWith(`${root}/criu-`)) rmSync(previous, { recursive: true, force: true });
}
