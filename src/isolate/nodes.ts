// `ckpt run --isolate --launcher slurm -- mpirun …` and its checkpoint and restart:
// one isolated tree per node (node-parts.ts). A checkpoint dumps the head (mpirun's
// tree, here), then every other node's part there (`srun -w NODE ckpt checkpoint
// NAME@NODE --term`), always ending the job: each dump kills its part and leaves
// CRIU's nftables lock on its connections, so no node sees a peer vanish and every
// byte a dead part had not acknowledged is still in its sender's image. Continuing
// instead would need every node locked before the first one resumes. The store
// holds one ordinary store per node and `nodes.json`, written last, naming the
// snapshot of each; `ckpt restart STORE` restores each on its own node (the same
// nodes, the same addresses: the TCP connections come back as they were).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { CkptError, ErrorCodes, UsageError } from '../errors.js';
import { writeFileAtomic, mkdirPrivate } from '../util/fsx.js';
import { checkpointIsolatedJob, defaultStore } from './checkpoint.js';
import { findIsolatedJob } from './job.js';
import { launchIsolated } from './launch.js';
import { restartIsolated } from './restore.js';
import { EXIT_CHECKPOINTED } from '../registry/jobs.js';
import { signalPid } from '../util/signals.js';
import { isMpiLauncher } from './mpi.js';
import { AGENT_SCRIPT, ckptArgv, isNodeName, PartLauncher, srunOnNode, type NodePart } from './node-parts.js';

/** The file of a store across nodes that names each node's snapshot (written last). */
export const NODES_FILE = 'nodes.json';
const FORMAT = 'ckpt-isolated-nodes/1';

interface NodesFile {
  format: string;
  name: string;
  /** Host first: the head (mpirun's tree); snapshot is `HOST/SEQ` relative to the store. */
  nodes: { host: string; name: string; snapshot: string }[];
}

/** The Slurm name of this node. */
const thisNode = (env: NodeJS.ProcessEnv): string => env.SLURMD_NODENAME ?? hostname().split('.')[0]!;

function requireAllocation(env: NodeJS.ProcessEnv, what: string): void {
  if (!(env.SLURM_JOB_ID ?? env.SLURM_JOBID)) throw new CkptError(ErrorCodes.NO_ALLOCATION, `${what} of an isolated job across nodes runs inside its Slurm allocation (salloc, sbatch)`);
}

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

/** Runs a ckpt command on `host` with srun: its srun and its exit status and output. */
function ckptOn(host: string, args: string[], forward: boolean): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
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
  const nodes: NodesFile['nodes'] = [{ host: head, name: job.name, snapshot: `${head}/${String(first.snapshot.seq).padStart(6, '0')}` }];
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
    nodes.push({ host: p.host, name: p.name, snapshot: `${p.host}/${String(seq).padStart(6, '0')}` });
  }
  const file: NodesFile = { format: FORMAT, name: job.name, nodes };
  writeFileAtomic(join(store, NODES_FILE), `${JSON.stringify(file, null, 2)}\n`);
  return { store, name: job.name, nodes };
}

/** Is `path` a store of a job across nodes? */
export const isNodesStore = (path: string): boolean => existsSync(join(path, NODES_FILE));

/** nodes.json, checked: it is input like any snapshot file. */
function readNodesFile(store: string): NodesFile {
  let f: NodesFile;
  try {
    f = JSON.parse(readFileSync(join(store, NODES_FILE), 'utf8')) as NodesFile;
  } catch (err) {
    throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${join(store, NODES_FILE)} is not readable JSON`, { cause: err });
  }
  const ok =
    f?.format === FORMAT &&
    Array.isArray(f.nodes) &&
    f.nodes.length > 0 &&
    f.nodes.every((n) => isNodeName(n?.host) && typeof n.name === 'string' && typeof n.snapshot === 'string' && n.snapshot.startsWith(`${n.host}/`) && /^\d{6}$/.test(n.snapshot.slice(n.host.length + 1))) &&
    new Set(f.nodes.map((n) => n.host)).size === f.nodes.length;
  if (!ok) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${join(store, NODES_FILE)} is not a ${FORMAT} file`);
  return f;
}

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
