// The Slurm allocation a job runs in, as its environment tells (salloc, sbatch,
// or srun set it), and where each rank goes in it: block (ranks 0..k-1 on the
// first node, …; by the allocation's tasks per node when they add up to the job's
// size) or cyclic (rank r on node r mod N).
import { CkptError, ErrorCodes } from '../errors.js';

export type Distribution = 'block' | 'cyclic';

export interface Allocation {
  jobId: string;
  /** Nodes in the allocation. */
  nodes: number;
  /** --ntasks-per-node, when the allocation was asked for with it. */
  tasksPerNode?: number;
  /** SLURM_TASKS_PER_NODE expanded: tasks per node, in node order (e.g. "2(x2),1" → [2, 2, 1]). */
  tasks?: number[];
}

const positive = (v: string | undefined): number | undefined => (v !== undefined && /^[1-9]\d*$/.test(v) ? Number(v) : undefined);

/** More nodes than any allocation has: a repeat count beyond it is a malformed value, not a loop to run. */
const MAX_NODES = 100_000;

/** "2(x3),1" → [2, 2, 2, 1]; undefined when malformed (counts are ≥ 1). */
export function expandTasksPerNode(text: string | undefined): number[] | undefined {
  if (!text) return undefined;
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^([1-9]\d*)(?:\(x([1-9]\d*)\))?$/.exec(part.trim());
    if (!m || out.length + Number(m[2] ?? 1) > MAX_NODES) return undefined;
    for (let i = 0; i < Number(m[2] ?? 1); i++) out.push(Number(m[1]));
  }
  return out;
}

/** The allocation this process runs in; NO_ALLOCATION outside one. */
export function slurmAllocation(env: NodeJS.ProcessEnv = process.env): Allocation {
  const jobId = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  const nodes = positive(env.SLURM_JOB_NUM_NODES ?? env.SLURM_NNODES);
  if (!jobId || nodes === undefined) {
    throw new CkptError(ErrorCodes.NO_ALLOCATION, '--launcher slurm needs a Slurm allocation (no SLURM_JOB_ID / SLURM_JOB_NUM_NODES here)', {
      hint: 'run it inside salloc or an sbatch script, or use --launcher local',
    });
  }
  const tasks = expandTasksPerNode(env.SLURM_TASKS_PER_NODE);
  return { jobId, nodes, tasksPerNode: positive(env.SLURM_NTASKS_PER_NODE), ...(tasks?.length === nodes ? { tasks } : {}) };
}

/**
 * The node index of every rank: `size` ranks on `nodes` nodes. Block follows the
 * allocation's tasks per node when they hold exactly `size` ranks, else
 * --ntasks-per-node, else spreads evenly (the first size mod nodes get one more).
 */
export function placeRanks(size: number, nodes: number, o: { distribution?: Distribution; tasksPerNode?: number; tasks?: number[] } = {}): number[] {
  if (o.distribution === 'cyclic') return Array.from({ length: size }, (_, r) => r % nodes);
  let perNode: number[];
  if (o.tasks && o.tasks.length === nodes && o.tasks.reduce((a, b) => a + b, 0) === size) perNode = o.tasks;
  else if (o.tasksPerNode && o.tasksPerNode * nodes >= size) perNode = Array.from({ length: nodes }, (_, i) => Math.max(0, Math.min(o.tasksPerNode!, size - i * o.tasksPerNode!)));
  else perNode = Array.from({ length: nodes }, (_, i) => Math.floor(size / nodes) + (i < size % nodes ? 1 : 0));
  return perNode.flatMap((n, node) => Array.from({ length: n }, () => node));
}
