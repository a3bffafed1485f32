// Which checkpointer a job uses and the version that goes into its manifests. Asked
// for by name (--crs, CKPT_CRS) or, unnamed, the first of the job checkpointers
// (crs/job-registry.ts, in order of preference) that works here.
import { CkptError, ErrorCodes } from '../errors.js';
import { isJobCheckpointer, jobCheckpointer, JOB_CHECKPOINTERS } from '../crs/job-registry.js';

export interface ChosenCheckpointer {
  name: string;
  version: string;
}

/** CKPT_CRS when it names a job checkpointer (other values are for single processes). */
export function checkpointerFromEnv(): string | undefined {
  const crs = process.env.CKPT_CRS;
  return crs !== undefined && isJobCheckpointer(crs) ? crs : undefined;
}

export async function resolveJobCheckpointer(name: string | undefined): Promise<ChosenCheckpointer> {
  if (name !== undefined && !isJobCheckpointer(name)) {
    throw new CkptError(ErrorCodes.USAGE, `a job is checkpointed by ${JOB_CHECKPOINTERS.join(' or ')}, not '${name}'`);
  }
  if (name !== undefined) return { name, version: (await jobCheckpointer(name).probe()).version };
  let last: unknown;
  for (const candidate of JOB_CHECKPOINTERS) {
    try {
      return { name: candidate, version: (await jobCheckpointer(candidate).probe()).version };
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
