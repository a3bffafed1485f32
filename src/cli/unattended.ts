// The options that let a job run unattended under a batch system, shared by `ckpt
// run` and `ckpt restart`: a checkpoint on the scheduler's signal, a requeue, and
// recovery from a dead rank (runtime/supervise.ts does the work).
import { constants } from 'node:os';
import { UsageError } from '../errors.js';
import type { Job } from '../runtime/launcher.js';
import { superviseJob, type SuperviseOptions } from '../runtime/supervise.js';
import type { JobSnapshot } from '../store/store.js';
import { intOption } from './command.js';
import { formatError } from './output.js';

/** `USR1`, `SIGUSR1`: a signal a process may catch. */
export function parseSignal(value: string, option: string): NodeJS.Signals {
  const name = (value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in constants.signals) || ['SIGKILL', 'SIGSTOP', 'SIGCONT', 'SIGCHLD', 'SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL'].includes(name)) {
    throw new UsageError(`--${option} takes a signal a process can catch (USR1, USR2, TERM, …), not '${value}'`);
  }
  return name;
}

type Values = {
  'checkpoint-signal'?: string;
  'on-checkpoint-signal'?: string;
  'max-restarts'?: string;
  'restart-from-scratch'?: boolean;
  'env-refresh'?: string[];
};

export interface Unattended {
  supervise: Pick<SuperviseOptions, 'checkpointSignal' | 'requeue' | 'maxRestarts' | 'restartFromScratch'>;
  envRefresh: string[];
}

export function unattendedFrom(values: Values): Unattended {
  const checkpointSignal = values['checkpoint-signal'] === undefined ? undefined : parseSignal(values['checkpoint-signal'], 'checkpoint-signal');
  const then = values['on-checkpoint-signal'];
  if (then !== undefined && then !== 'stop' && then !== 'requeue') throw new UsageError(`--on-checkpoint-signal is stop or requeue, not '${then}'`);
  if (then !== undefined && !checkpointSignal) throw new UsageError('--on-checkpoint-signal goes with --checkpoint-signal');
  const maxRestarts = intOption(values['max-restarts'], 'max-restarts', 0);
  if (values['restart-from-scratch'] && !maxRestarts) throw new UsageError('--restart-from-scratch goes with --max-restarts');
  for (const name of values['env-refresh'] ?? []) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`--env-refresh takes a variable name, not '${name}'`);
  }
  return {
    supervise: { checkpointSignal, requeue: then === 'requeue', maxRestarts, restartFromScratch: values['restart-from-scratch'] === true },
    envRefresh: values['env-refresh'] ?? [],
  };
}

/** Runs a job to its end under the policy; returns the command's exit status. */
export async function runUnattended(
  job: Job,
  u: Unattended,
  o: { store: string; relaunch: (from: JobSnapshot | undefined) => Promise<Job>; onRelaunch?: (job: Job) => void },
): Promise<number> {
  const result = await superviseJob(job, {
    ...u.supervise,
    store: o.store,
    name: job.name,
    relaunch: async (from) => {
      const next = await o.relaunch(from);
      o.onRelaunch?.(next);
      return next;
    },
    log: (line) => process.stderr.write(`${line}\n`),
  });
  if (result.error) process.stderr.write(`${formatError(result.error)}\n`);
  return result.status;
}
