// Where a job's ranks run, as `ckpt run` and `ckpt restart` are told: --launcher
// local|slurm (default: slurm inside a Slurm allocation, else local), -N NODES,
// --distribution block|cyclic, --bind IFACE|ADDR, --stage DIR.
import { UsageError } from '../errors.js';
import type { LaunchOptions } from '../runtime/launcher.js';
import { slurmAllocation } from '../runtime/slurm-allocation.js';
import { intOption } from './command.js';

type Values = { launcher?: string; nodes?: string; distribution?: string; stage?: string };

export function launcherFrom(values: Values, env: NodeJS.ProcessEnv = process.env): Pick<LaunchOptions, 'launcher' | 'nodes' | 'distribution' | 'stage' | 'log'> {
  // Inside an allocation (a job id and its node count, as salloc, sbatch and srun set them): across its nodes.
  const inAllocation = !!(env.SLURM_JOB_ID ?? env.SLURM_JOBID) && !!(env.SLURM_JOB_NUM_NODES ?? env.SLURM_NNODES);
  const launcher = values.launcher ?? (inAllocation ? 'slurm' : 'local');
  if (launcher !== 'local' && launcher !== 'slurm') throw new UsageError(`--launcher is local or slurm, not '${launcher}'`);
  const d = values.distribution;
  if (d !== undefined && d !== 'block' && d !== 'cyclic') throw new UsageError(`--distribution is block or cyclic, not '${d}'`);
  if (launcher === 'local' && (values.nodes !== undefined || d !== undefined)) {
    throw new UsageError(`${values.nodes !== undefined ? '-N' : '--distribution'} places ranks on the nodes of a Slurm allocation: it needs --launcher slurm`);
  }
  const nodes = intOption(values.nodes, 'nodes', 1);
  if (launcher === 'slurm') {
    // Checked first: outside an allocation nothing else (this host's address for the nodes, the store) can be right.
    const alloc = slurmAllocation(env);
    if (nodes !== undefined && nodes > alloc.nodes) throw new UsageError(`-N ${nodes}: the allocation has ${alloc.nodes} node${alloc.nodes > 1 ? 's' : ''}`);
  }
  return {
    launcher,
    ...(nodes !== undefined ? { nodes } : {}),
    ...(d ? { distribution: d } : {}),
    // Not recorded in a snapshot (it names a directory of these nodes): a restart takes it again.
    ...(values.stage !== undefined ? { stage: values.stage } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  };
}
