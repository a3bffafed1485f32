// Slurm, as a batch job sees it: the job's own id in its environment, and the one
// command ckpt runs for it (a requeue once a checkpoint is committed).
import { spawn } from 'node:child_process';
import { trustedTool } from './trusted-tool.js';

/** Asks Slurm to queue this batch job again (its script then runs from the top). */
export async function requeueSlurmJob(log: (line: string) => void): Promise<void> {
  const id = process.env.SLURM_JOB_ID;
  if (!id) {
    log('ckpt: not inside a Slurm job (no SLURM_JOB_ID): nothing to requeue');
    return;
  }
  let scontrol: string;
  try {
    scontrol = trustedTool('scontrol');
  } catch (err) {
    log(`ckpt: cannot requeue Slurm job ${id}: ${(err as Error).message}`);
    return;
  }
  const child = spawn(scontrol, ['requeue', id], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', resolve);
  });
  log(code === 0 ? `ckpt: requeued Slurm job ${id}` : `ckpt: scontrol requeue ${id} failed: ${err.trim() || `status ${code}`}`);
}
