// What a job across nodes (nodes.ts) needs of Slurm: srun of one task on a named
// node of the current allocation (ckpt itself there, for a part's start, dump or
// restore), this node's Slurm name, and the allocation itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';
import { resolveCommand } from '../util/command.js';
import { trustedTool } from '../util/trusted-tool.js';
import { packageRoot } from '../util/package-root.js';

/** A Slurm node name as srun -w takes it (and nothing a shell or a path could misread). */
export const isNodeName = (s: string): boolean => /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(s);

/** `srun` for one task on `host` in the current allocation, sharing its resources. */
export function srunOnNode(host: string, argv: string[], env: NodeJS.ProcessEnv): { file: string; args: string[] } {
  const jobId = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  if (!jobId) throw new Error('not inside a Slurm allocation');
  const file = resolveCommand(trustedTool('srun', env.PATH ?? ''), env.PATH ?? '');
  return { file, args: [`--jobid=${jobId}`, '--overlap', '-N1', '-n1', '-w', host, '--export=ALL', ...argv] };
}

/** `ckpt ARGS` as a command line for another node (this build, this Node.js). */
export const ckptArgv = (args: string[]): string[] => [process.execPath, join(packageRoot(), 'bin', 'ckpt'), ...args];

/** The Slurm name of this node. */
export const thisNode = (env: NodeJS.ProcessEnv): string => env.SLURMD_NODENAME ?? hostname().split('.')[0]!;

export function requireAllocation(env: NodeJS.ProcessEnv, what: string): void {
  if (!(env.SLURM_JOB_ID ?? env.SLURM_JOBID)) throw new CkptError(ErrorCodes.NO_ALLOCATION, `${what} of an isolated job across nodes runs inside its Slurm allocation (salloc, sbatch)`);
}

/** Runs a ckpt command on `host` with srun: its srun and its exit status and output. */
export function ckptOn(host: string, args: string[], forward: boolean): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const { file, args: srunArgs } = srunOnNode(host, ckptArgv(args), process.env);
  const child = spawn(file, srunArgs, { stdio: ['ignore', forward ? 'inherit' : 'pipe', forward ? 'inherit' : 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
    child.on('error', (err) => res({ code: null, stdout, stderr: `${stderr}${err.message}` }));
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
  return { child, done };
}
