// The components that can checkpoint whole jobs, by name. A new one: its folder
// under crs/ and one line here (docs/ARCHITECTURE.md, "Add a checkpointer").
import { CkptError, ErrorCodes } from '../errors.js';
import { criuJobCheckpointer } from './criu/job.js';
import type { JobCheckpointer } from './job.js';
import { selfJobCheckpointer } from './self/job.js';

const components = new Map<string, JobCheckpointer>([
  [selfJobCheckpointer.name, selfJobCheckpointer],
  [criuJobCheckpointer.name, criuJobCheckpointer],
]);

/** The component that needs nothing of the machine: a job's checkpointer when none is named (and a prepare that names none). */
export const FALLBACK_JOB_CHECKPOINTER = selfJobCheckpointer.name;

/** The names of the components that checkpoint jobs, in order of preference. */
export const JOB_CHECKPOINTERS = ['criu', 'self'] as const;

export function jobCheckpointer(name: string): JobCheckpointer {
  const c = components.get(name);
  if (!c) throw new CkptError(ErrorCodes.CRS_UNKNOWN, `'${name}' cannot checkpoint jobs (components for jobs: ${[...components.keys()].join(', ')})`);
  return c;
}

export function isJobCheckpointer(name: string): boolean {
  return components.has(name);
}
