// launchJob(): checks the options, claims the job's store, opens its output files,
// starts its coordinator, then hands all that to a Job (job.ts), which starts the
// ranks — or, restarting from a criu snapshot, restores them (restore-criu.ts).
import { mkdtempSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';
import { claimStore } from '../registry/jobs.js';
import { resolveCommand } from '../util/command.js';
import { withUnpublishedInspector } from '../util/inspector.js';
import { stageDirProblem } from '../store/stage.js';
import { sweepDeadStaged } from '../store/stage-sweep.js';
import { heldTag } from '../util/writer-beacon.js';
import { stateDir } from '../util/paths.js';
import { newSecret, type Address } from '../wire/channel.js';
import { Coordinator } from './coordinator.js';
import { Job } from './job.js';
import { SlurmStarter } from './starter-slurm.js';
import { nodeAddress } from '../wire/host-address.js';
import type { LaunchOptions } from './job-types.js';
import { RankOutputFiles } from './rank-output.js';
import { removeOwnDir } from '../util/remove-tree.js';
import { checkSettings } from '../config.js';
import { jobNameProblem } from '../util/job-name.js';

export { Job } from './job.js';
export type { JobEvents, JobResult, LaunchOptions, OutputMode, RankExit } from './job-types.js';
export { EXIT_CHECKPOINTED } from '../registry/jobs.js';
export { resolveCommand } from '../util/command.js';

/** The most ranks one job may have: every rank may connect to every other. */
export const MAX_RANKS = 256;

function checkOptions(options: LaunchOptions): void {
  const size = options.size;
  if (!Number.isInteger(size) || size < 1 || size > MAX_RANKS) {
    throw new CkptError(ErrorCodes.USAGE, `a job has 1 to ${MAX_RANKS} ranks, not ${size}`);
  }
  const oob = options.oob ?? 'unix';
  if (oob !== 'unix' && oob !== 'tcp') throw new CkptError(ErrorCodes.USAGE, `--oob is unix or tcp, not '${String(oob)}'`);
  if (options.bind !== undefined && oob !== 'tcp') throw new CkptError(ErrorCodes.USAGE, '--bind needs --oob tcp');
  if (options.launcher === 'slurm' && options.oob === 'unix') throw new CkptError(ErrorCodes.USAGE, '--launcher slurm: ranks on other nodes talk over tcp, not unix sockets');
  if (options.nodes !== undefined && !(Number.isInteger(options.nodes) && options.nodes >= 1)) throw new CkptError(ErrorCodes.USAGE, `-N is a number of nodes, not ${options.nodes}`);
  if (options.nodes !== undefined && options.launcher !== 'slurm') throw new CkptError(ErrorCodes.USAGE, '-N needs --launcher slurm');
  // A store named that is a file would fail only at the first checkpoint, after the job has run for a while.
  if (options.store !== undefined && statSync(options.store, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new CkptError(ErrorCodes.USAGE, `--dir: ${options.store} is not a directory`);
  }
  const badName = options.name === undefined ? undefined : jobNameProblem(options.name);
  if (badName) throw new CkptError(ErrorCodes.USAGE, `the job's name ${badName}`);
  // --stage: checked here for ranks on this host; across nodes, by every node's agent at the start.
  const stage = options.stage;
  if (stage !== undefined && !isAbsolute(stage)) throw new CkptError(ErrorCodes.USAGE, `--stage: '${stage}' is not an absolute path`);
  const problem = stage !== undefined && options.launcher !== 'slurm' && !options.starter?.remote ? stageDirProblem(stage) : undefined;
  if (problem) throw new CkptError(ErrorCodes.USAGE, `--stage: ${problem}`);
}

/** The launch options with the launcher's choices made: slurm means TCP, and a SlurmStarter. */
async function withLauncher(options: LaunchOptions): Promise<LaunchOptions> {
  if (options.launcher !== 'slurm' || options.starter) return options;
  return {
    ...options,
    oob: 'tcp',
    // The coordinator listens where the nodes reach this host.
    bind: await nodeAddress(options.bind),
    starter: new SlurmStarter({ nodes: options.nodes, distribution: options.distribution, bind: options.bind, log: options.log }),
  };
}

/** What every rank's environment has besides the job's: where the coordinator is, and the job's timeouts. */
function rankEnvironment(env: NodeJS.ProcessEnv, options: LaunchOptions, job: Job): NodeJS.ProcessEnv {
  const rankEnv: NodeJS.ProcessEnv = {
    ...env,
    CKPT_SIZE: String(job.size),
    CKPT_JOB_ID: job.id,
    CKPT_COORD: job.address,
    CKPT_JOB_SECRET: job.secret,
    // A Node rank's debugger port, opened by a SIGUSR1 before ckpt's library holds the
    // signal, does not give its URL away over HTTP (util/inspector.ts).
    NODE_OPTIONS: withUnpublishedInspector(env.NODE_OPTIONS),
  };
  if (options.rankTimeoutMs !== undefined) rankEnv.CKPT_TIMEOUT_MS = String(options.rankTimeoutMs);
  if (options.joinTimeoutMs !== undefined) rankEnv.CKPT_JOIN_TIMEOUT_MS = String(options.joinTimeoutMs + 10_000);
  return rankEnv;
}

/**
 * What a job holds before its ranks start: its store claim, its output files, the
 * private directory of its sockets, its listening coordinator. A step that fails
 * gives back what the steps before it took.
 */
async function prepareJob(options: LaunchOptions, id: string): Promise<Job> {
  const undo: (() => void)[] = [];
  try {
    const name = options.name ?? id;
    // A store holds one job's snapshots: refused when another live job has it, or it
    // holds another job's (a restart is the same job: it keeps the name).
    const releaseStore = claimStore(options.store ?? join(stateDir(), 'snapshots', name), { id, name });
    undo.push(releaseStore);
    // A restored job's ranks append to what they wrote before.
    const files = options.output?.mode === 'files' ? new RankOutputFiles(options.output.dir, options.size, options.restoreFrom !== undefined) : undefined;
    if (files) undo.push(() => files.close());
    // Sockets live in a private directory: only this user can reach them (Node cannot
    // read SO_PEERCRED; the 0700 directory plus the job secret stand in for it).
    const dir = mkdtempSync(join(tmpdir(), `ckpt-${id}-`));
    undo.push(() => removeOwnDir(dir));
    const secret = newSecret();
    const address: Address =
      (options.oob ?? 'unix') === 'unix' ? { transport: 'unix', path: join(dir, 'coord.sock') } : { transport: 'tcp', host: options.bind ?? '127.0.0.1', port: 0 };
    const coordinator = new Coordinator({ jobId: id, size: options.size, secret, address, joinTimeoutMs: options.joinTimeoutMs });
    await coordinator.listen();
    return new Job({ options, id, dir, coordinator, secret, files, releaseStore });
  } catch (err) {
    for (const step of undo.reverse()) step();
    throw err;
  }
}

/** Starts a job. Fails before starting anything on bad options or an unknown command. */
export async function launchJob(given: LaunchOptions): Promise<Job> {
  checkOptions(given);
  // --stage for ranks on this host: this process names its staged copies (writer-beacon.ts), and what a
  // coordinator or agent that died here left staged goes first (across nodes, each agent does it).
  if (given.stage !== undefined && given.launcher !== 'slurm' && !given.starter?.remote) {
    await heldTag();
    await sweepDeadStaged(given.stage);
  }
  const options = await withLauncher(given);
  const env = { ...process.env, ...options.env };
  // What the ranks and agents will read: a malformed one is one line here, not an error from each of them.
  checkSettings(env);
  resolveCommand(options.command, env.PATH ?? '', options.cwd);
  const job = await prepareJob(options, randomBytes(4).toString('hex'));
  if (options.crs !== undefined) {
    try {
      await job.checkpointer(); // fail now, not at the first checkpoint
    } catch (err) {
      await job.discard();
      throw err;
    }
  }
  try {
    await job.attachStarter();
  } catch (err) {
    await job.discard();
    throw err;
  }
  const rankEnv = rankEnvironment(env, options, job);
  // criu: the ranks are restored from their images; self, or a first start: started.
  if (options.restoreFrom) await job.startRestored(options.restoreFrom, rankEnv);
  else job.start(rankEnv);
  return job;
}
