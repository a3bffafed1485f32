// `ckpt run --isolate --launcher slurm -- mpirun …` and its checkpoint and restart:
// one isolated tree per node (node-parts.ts). A checkpoint dumps the head (mpirun's
// tree, here), then every other node's part there (`srun -w NODE ckpt checkpoint
// NAME@NODE --term`), always ending the job: each dump kills its part and leaves
// CRIU's nftables lock on its connections, so no node sees a peer vanish and every
// byte a dead part had not acknowledged is still in its sender's image. Continuing
// instead would need every node locked before the first one resumes. The store
// holds one ordinary store per node and `nodes.json`, written last, naming the
// snapshot of each (nodes-store.ts); `ckpt restart STORE` restores each on its own
// node (nodes-restart.ts; the same nodes, the same addresses: the TCP connections
// come back as they were).
import { join, resolve } from 'node:path';
import { CkptError, ErrorCodes, UsageError } from '../errors.js';
import { seqName } from '../store/layout.js';
import { mkdirPrivate } from '../util/fsx.js';
import { checkpointIsolatedJob, defaultStore } from './checkpoint.js';
import { findIsolatedJob } from './job.js';
import { launchIsolated } from './launch.js';
import { isMpiLauncher } from './mpi.js';
import { AGENT_SCRIPT, PartLauncher, type NodePart } from './node-parts.js';
import { ckptOn, isNodeName, requireAllocation, thisNode } from './nodes-slurm.js';
import { NODES_FILE, writeNodesFile, type NodesFile } from './nodes-store.js';

/** Runs the job; its exit status (EXIT_CHECKPOINTED when a checkpoint ended it). */
export async function runAcrossNodes(command: string[], o: { name?: string; log: (line: string) => void }): Promise<number> {
  requireAllocation(process.env, 'the start');
  if (!isMpiLauncher(command[0]!)) throw new UsageError('--isolate --launcher slurm runs an Open MPI job: the command is mpirun (or mpiexec)');
  const job = await launchIsolated({ command: command[0]!, args: command.slice(1), name: o.name, nodes: { agentScript: AGENT_SCRIPT } });
  let failure: string | undefined;
  const parts = new PartLauncher({
    ioDir: job.ioDir,
    name: job.name,
    onPart: (p) => job.addPart(p),
    onFailure: (message) => {
      failure ??= message;
      o.log(`ckpt: ${message}; ending the job`);
      void job.end();
    },
    log: o.log,
  });
  const end = () => void job.end();
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, end);
  try {
    const exit = await job.wait();
    // Parts end with mpirun's word, or at their own dump after a checkpoint.
    await parts.finish(exit.checkpointed ? 120_000 : 15_000);
    return failure !== undefined && exit.status === 0 ? 1 : exit.status;
  } finally {
    parts.close();
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, end);
  }
}

export interface NodesCheckpoint {
  store: string;
  name: string;
  nodes: NodesFile['nodes'];
}

/** `ckpt checkpoint JOB --term` of a job across nodes (run where its `ckpt run` runs). */
export async function checkpointAcrossNodes(o: { job: string; dir?: string; onProgress?: (m: string) => void }): Promise<NodesCheckpoint> {
  const job = findIsolatedJob(o.job);
  const parts: NodePart[] = job.isolated.parts ?? [];
  requireAllocation(process.env, 'the checkpoint');
  for (const p of parts) if (!isNodeName(p.host)) throw new CkptError(ErrorCodes.INTERNAL, `bad node name in the job's record: ${p.host}`);
  const store = resolve(o.dir ?? defaultStore(job));
  mkdirPrivate(store);
  const head = thisNode(process.env);
  o.onProgress?.(`dumping mpirun's tree on ${head}`);
  const first = await checkpointIsolatedJob({ job: job.id, dir: join(store, head), then: 'terminate', onProgress: o.onProgress });
  const nodes: NodesFile['nodes'] = [{ host: head, name: job.name, snapshot: `${head}/${seqName(first.snapshot.seq)}` }];
  for (const p of parts) {
    o.onProgress?.(`dumping the part on ${p.host}`);
    const r = await ckptOn(p.host, ['checkpoint', p.name, '--term', '--dir', join(store, p.host), '--json'], false).done;
    let seq: unknown;
    try {
      seq = (JSON.parse(r.stdout) as { seq?: unknown }).seq;
    } catch {
      // below
    }
    if (r.code !== 0 || typeof seq !== 'number') {
      const why = r.stderr.trim().split('\n').filter((l) => !l.startsWith('srun:')).at(-1) ?? `status ${r.code}`;
      throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `the checkpoint of the part on ${p.host} failed: ${why}`, {
        hint: `the parts dumped before it have ended; this checkpoint is incomplete (${NODES_FILE} still names the previous complete one, if any)`,
      });
    }
    nodes.push({ host: p.host, name: p.name, snapshot: `${p.host}/${seqName(seq)}` });
  }
  writeNodesFile(store, job.name, nodes);
  return { store, name: job.name, nodes };
}

