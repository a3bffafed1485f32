// Unpacking the downloaded packages (`dpkg -x`) and patching the criu binary onto
// the private loader and libraries it came with. Never an ld.so wrapper script:
// restores of programs using the same loader fail with PR_SET_MM_MAP -16.
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { installError } from './errors.js';
import { mustRun } from './tools.js';

/** The criu binary's place inside an install directory. */
export const CRIU_BIN = join('usr', 'sbin', 'criu');

export interface UnpackRequest {
  archives: string;
  debs: string[];
  /** Where the tree is unpacked (created here). */
  staging: string;
  /** Where the tree will be moved: the binary is patched for that place. */
  finalDir: string;
  /** The Debian multiarch triplet, naming the library directories. */
  triplet: string;
  patchelf: string;
}

/** Unpacks every .deb into `staging` and points its criu at `finalDir`'s loader and libraries. */
export async function unpackAndPatch(req: UnpackRequest, progress: (m: string) => void): Promise<void> {
  const { staging, finalDir, triplet, patchelf } = req;
  progress(`unpacking ${req.debs.length} packages`);
  mkdirSync(staging);
  for (const deb of req.debs) await mustRun(`dpkg -x ${deb}`, 'dpkg', ['-x', join(req.archives, deb), staging], 300_000);

  const bin = join(staging, CRIU_BIN);
  const interp = (await mustRun('patchelf --print-interpreter', patchelf, ['--print-interpreter', bin], 60_000)).stdout.trim();
  const libDirsRel = [join('usr', 'lib', triplet), join('lib', triplet)].filter((d) => existsSync(join(staging, d)));
  const loaderRel = [...libDirsRel, join('usr', 'lib64'), 'lib64']
    .map((d) => join(d, basename(interp)))
    .find((p) => existsSync(join(staging, p)));
  if (!loaderRel || libDirsRel.length === 0) {
    throw installError(`the downloaded packages hold no ${basename(interp)} for ${triplet}`, { details: { packages: req.debs } });
  }
  progress('patching criu onto its private loader and libraries');
  await mustRun('patchelf', patchelf, [
    '--set-interpreter',
    join(finalDir, loaderRel),
    '--force-rpath',
    '--set-rpath',
    libDirsRel.map((d) => join(finalDir, d)).join(':'),
    bin,
  ], 60_000);
}
