// Which checkpointer a job uses — criu or self — and the version that goes into its
// manifests. Asked for by name (--crs, CKPT_CRS) or, unnamed, criu when it can work
// here, else self.
import { CkptError, ErrorCodes } from '../errors.js';
import { version } from '../version.js';
import type { JobCheckpointer } from './checkpoint.js';

export interface ChosenCheckpointer {
  name: JobCheckpointer;
  version: string;
}

/** CKPT_CRS when it names a job checkpointer (other values are for single processes). */
export function checkpointerFromEnv(): JobCheckpointer | undefined {
  const crs = process.env.CKPT_CRS;
  return crs === 'criu' || crs === 'self' ? crs : undefined;
}

export async function resolveJobCheckpointer(name: string | undefined): Promise<ChosenCheckpointer> {
  const { selectCheckpointer } = await import('../crs/registry.js');
  if (name !== undefined && name !== 'criu' && name !== 'self') {
    throw new CkptError(ErrorCodes.USAGE, `a job is checkpointed by criu or self, not '${name}'`);
  }
  if (name === undefined) {
    try {
      const { availability } = await selectCheckpointer({ name: 'criu' });
      return { name: 'criu', version: availability.version ?? 'unknown' };
    } catch {
      return { name: 'self', version };
    }
  }
  const { availability } = await selectCheckpointer({ name });
  return { name, version: availability.version ?? version };
}
