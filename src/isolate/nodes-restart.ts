// `ckpt restart STORE` of an isolated job across nodes (nodes.ts): mpirun's tree
// here, every other node's part on its node at the same time.
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { EXIT_CHECKPOINTED } from '../registry/jobs.js';
import { signalPid } from '../util/signals.js';
import { ckptOn, requireAllocation, thisNode } from './nodes-slurm.js';
import { readNodesFile } from './nodes-store.js';
import { restartIsolated } from './restore.js';

/**
 * `ckpt restart STORE` of a job across nodes, on the node where its mpirun ran: the
 * head restored here (its record lists the parts again: it can be checkpointed
 * anew), every other part on its node at the same time. The head's exit status.
 */
export async function restartAcrossNodes(store: string, o: { log: (line: string) => void; verify?: boolean }): Promise<number> {
  requireAllocation(process.env, 'the restart');
  const f = readNodesFile(store);
  const root = resolve(store);
  const [head, ...parts] = f.nodes;
  const here = thisNode(process.env);
  if (head!.host !== here) throw new UsageError(`restart this job on ${head!.host}, where its mpirun ran (this is ${here})`, { hint: `srun --overlap -N1 -n1 -w ${head!.host} ckpt restart ${root}` });
  const remote = parts.map((n) => ({ node: n, run: ckptOn(n.host, ['restart', join(root, n.snapshot)], true) }));
  const endRemote = () => {
    for (const r of remote) if (r.run.child.exitCode === null && r.run.child.pid) signalPid(r.run.child.pid, 'SIGTERM');
  };
  let job;
  try {
    job = (await restartIsolated(join(root, head!.snapshot), { verify: o.verify, parts: parts.map((n) => ({ host: n.host, name: n.name })) })).job;
  } catch (err) {
    // Restored parts would wait for mpirun for ever.
    endRemote();
    await Promise.all(remote.map((r) => r.run.done));
    throw err;
  }
  const end = () => void job.end();
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, end);
  try {
    const exit = await job.wait();
    const results = await Promise.all(remote.map((r) => r.run.done));
    results.forEach((r, i) => {
      if (r.code !== 0 && r.code !== EXIT_CHECKPOINTED) o.log(`ckpt: the part on ${parts[i]!.host} ended with status ${r.code ?? 'unknown'}`);
    });
    return exit.status;
  } finally {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, end);
  }
}
