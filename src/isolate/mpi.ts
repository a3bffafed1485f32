// Open MPI inside an isolated job. mpirun (Open MPI 4.1 on Debian 12) needs a few
// MCA settings to run — and to be restorable — in a namespace whose only network
// interface is `lo` and whose /tmp is a private tmpfs. They are set as OMPI_MCA_*
// environment variables when the command is mpirun/mpiexec/orterun; a value the
// user set already wins.
import { basename } from 'node:path';

const LAUNCHERS = new Set(['mpirun', 'mpiexec', 'orterun', 'mpirun.openmpi', 'mpiexec.openmpi']);

/** Is this command Open MPI's launcher? */
export function isMpiLauncher(command: string): boolean {
  return LAUNCHERS.has(basename(command));
}

/**
 * The environment mpirun needs in an isolated job:
 * - btl/oob over `lo` only (else `unreachable proc` in a netns that has only lo);
 * - the session directory on the job's private /tmp, so CRIU stores it in the
 *   images and copies of one snapshot never share it (mpirun has the same small
 *   pid, hence the same session-dir name, in every pid namespace);
 * - oversubscription allowed (ranks may outnumber the cores);
 * - running as root allowed when we are root (ckpt needs root for CRIU anyway).
 */
export function mpiEnvironment(env: NodeJS.ProcessEnv, uid = process.geteuid?.() ?? -1): Record<string, string> {
  return unlessSet(env, { OMPI_MCA_btl_tcp_if_include: 'lo', OMPI_MCA_oob_tcp_if_include: 'lo', ...common(uid) });
}

/**
 * mpirun across the nodes of a Slurm allocation (src/isolate/node-parts.ts): its
 * daemons (orted) are started by `agent`, Open MPI's rsh launcher, one per node and
 * not as a tree — never by srun from inside the job, which would tie the job to
 * Slurm's daemons. TCP goes over the nodes' own interfaces, so not `lo` only.
 */
export function mpiNodesEnvironment(env: NodeJS.ProcessEnv, agent: string, uid = process.geteuid?.() ?? -1): Record<string, string> {
  return unlessSet(env, { OMPI_MCA_plm: 'rsh', OMPI_MCA_plm_rsh_agent: agent, OMPI_MCA_plm_rsh_no_tree_spawn: '1', ...common(uid) });
}

function common(uid: number): Record<string, string> {
  const wanted: Record<string, string> = { OMPI_MCA_orte_tmpdir_base: '/tmp', OMPI_MCA_rmaps_base_oversubscribe: '1' };
  if (uid === 0) {
    wanted.OMPI_ALLOW_RUN_AS_ROOT = '1';
    wanted.OMPI_ALLOW_RUN_AS_ROOT_CONFIRM = '1';
  }
  return wanted;
}

function unlessSet(env: NodeJS.ProcessEnv, wanted: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(wanted)) if (env[k] === undefined) out[k] = v;
  return out;
}
