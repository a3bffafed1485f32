// launchIsolated(): `ckpt run --isolate [--net] -- CMD ARGS…` — CMD as the root
// of a fresh pid + mount (+ network) namespace, ready to be dumped whole by CRIU.
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve as resolvePath } from 'node:path';
import type { Writable } from 'node:stream';
import { CkptError, ErrorCodes, JobError } from '../errors.js';
import { envFlag } from '../config.js';
import { spawnGroup, waitExit } from '../util/spawn.js';
import { signalGroup, signalPid } from '../util/signals.js';
import { resolveCommand } from '../util/command.js';
import { IsolatedJob } from './job.js';
import { isMpiLauncher, mpiEnvironment, mpiNodesEnvironment } from './mpi.js';
import { IDENTITY_MAP, IO_MOUNT, namespaceCommand, SETUP_FAILED_STATUS } from './namespace-init.js';
import { createOutputDir, removeOutputDir } from './output.js';

export interface IsolatedLaunchOptions {
  command: string;
  args?: readonly string[];
  /** Give the job its own network namespace (loopback only): needed to run copies side by side. */
  net?: boolean;
  name?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where the job's output is forwarded (default: this process's stdout/stderr). */
  output?: { stdout?: Writable; stderr?: Writable };
  /** Between SIGTERM and SIGKILL when the job is ended (ms, default 2 s). */
  killGraceMs?: number;
  /** Record the job for `ckpt ps` / `ckpt kill` / `ckpt checkpoint` (default true). */
  register?: boolean;
  /** Its periodic checkpoints (run by the caller: supervise.ts), recorded into its snapshots. */
  schedule?: { intervalMs: number; keep?: number };
  /** How long the namespace set-up may take (ms, default 15 s). */
  startTimeoutMs?: number;
  /**
   * Run the job in a user namespace owned by root with an identity uid/gid map
   * (default true; CKPT_ISOLATE_USERNS=0 turns it off): the job's processes of other
   * users can then be dumped without CAP_SYS_RESOURCE.
   */
  userns?: boolean;
  /**
   * mpirun across the nodes of a Slurm allocation (node-parts.ts): this script goes
   * into the job's output directory as Open MPI's launch agent. The job shares the
   * node's network and has no user namespace of its own (CRIU restores its TCP
   * connections in the node's network namespace, which needs root's CAP_NET_ADMIN there).
   */
  nodes?: { agentScript: string };
}

export function usernsDefault(): boolean {
  return envFlag('CKPT_ISOLATE_USERNS');
}

/** uid_map and gid_map of a process that has just entered a fresh user namespace. */
function writeIdentityMaps(pid: number): void {
  if (!(pid > 1)) throw new Error('no pid for the user namespace');
  writeFileSync(`/proc/${pid}/uid_map`, IDENTITY_MAP);
  writeFileSync(`/proc/${pid}/gid_map`, IDENTITY_MAP);
}

/** Open MPI's launch agent in the output directory of a job across nodes. */
export const NODES_AGENT = 'orted-agent';

/** File systems that are private inside the job: a program living there is invisible to it. */
const PRIVATE_PREFIXES = ['/tmp', '/dev/shm'];

const under = (path: string, dir: string): boolean => path === dir || path.startsWith(`${dir}/`);

function assertVisibleInside(what: string, path: string): void {
  const dir = PRIVATE_PREFIXES.find((d) => under(path, d));
  if (dir) {
    throw new CkptError(ErrorCodes.USAGE, `${what} ${path} is under ${dir}, which is private (empty) inside an isolated job`, {
      hint: `move it out of ${dir}`,
    });
  }
}

/** Reads [`userns`,] `pid` then `ready` from the outer script's stdout. */
function readHandshake(stream: NodeJS.ReadableStream, onUserns?: () => void): { pid: Promise<number>; ready: Promise<void> } {
  let text = '';
  let resolvePid!: (n: number) => void;
  let resolveReady!: () => void;
  let rejectBoth!: (err: Error) => void;
  const pid = new Promise<number>((res, rej) => {
    resolvePid = res;
    rejectBoth = rej;
  });
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    const prev = rejectBoth;
    rejectBoth = (err) => {
      prev(err);
      rej(err);
    };
  });
  pid.catch(() => {});
  ready.catch(() => {});
  stream.setEncoding('utf8');
  let usernsSeen = !onUserns;
  stream.on('data', (d: string) => {
    text += d;
    if (!usernsSeen) {
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      if (text.slice(0, nl) === 'userns') {
        usernsSeen = true;
        text = text.slice(nl + 1);
        try {
          onUserns!();
        } catch (err) {
          rejectBoth(err as Error);
          return;
        }
      }
    }
    const lines = text.split('\n');
    if (lines.length > 1 && /^\d+$/.test(lines[0]!)) resolvePid(Number(lines[0]));
    if (lines.length > 2 && lines[1] === 'ready') resolveReady();
  });
  stream.on('end', () => rejectBoth(new Error('the job exited during set-up')));
  return { pid, ready };
}

export async function launchIsolated(options: IsolatedLaunchOptions): Promise<IsolatedJob> {
  const cwd = resolvePath(options.cwd ?? process.cwd());
  const baseEnv = { ...process.env, ...options.env };
  const exe = resolveCommand(options.command, baseEnv.PATH ?? '', cwd);
  assertVisibleInside('the command', exe);
  assertVisibleInside('the working directory', cwd);
  // (The job's environment: libuv's io_uring cannot be dumped; Open MPI gets its settings.)
  const env: NodeJS.ProcessEnv = { UV_USE_IO_URING: '0', ...baseEnv };
  const id = randomBytes(4).toString('hex');
  const ioDir = createOutputDir(id);
  if (options.nodes) {
    writeFileSync(join(ioDir, NODES_AGENT), options.nodes.agentScript, { mode: 0o700 });
    if (isMpiLauncher(exe)) Object.assign(env, mpiNodesEnvironment(env, `bash ${IO_MOUNT}/${NODES_AGENT}`));
  } else if (isMpiLauncher(exe)) Object.assign(env, mpiEnvironment(env));
  const command = [options.command, ...(options.args ?? [])];
  const userns = options.nodes ? false : (options.userns ?? usernsDefault());
  const ns = namespaceCommand({ command, ioDir, cwd, net: options.net === true, userns, path: env.PATH });
  const child = spawnGroup(ns.file, ns.args, { cwd: '/', env: { ...env, ...ns.env }, stdio: [ns.userns ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  child.stdin?.on('error', () => {}); // a set-up that died before reading `go`
  let setupErr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    // Only set-up failures reach this pipe: the job's own stderr is a file.
    if (setupErr.length < 8192) setupErr += d;
  });
  const exited = waitExit(child);
  // With a user namespace: the first stage (the same pid, now in the new user
  // namespace) waits for its identity maps, written from here, then goes on.
  const handshake = readHandshake(
    child.stdout!,
    ns.userns
      ? () => {
          writeIdentityMaps(child.pid!);
          child.stdin!.end('go\n');
        }
      : undefined,
  );
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      handshake.ready,
      exited.then(() => Promise.reject(new Error('exited'))),
      new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('timeout')), timeoutMs))),
    ]);
  } catch (err) {
    const exit = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
    if (!exit && child.pid && child.pid > 1) signalGroup(child.pid, 'SIGKILL');
    const rootPid = await Promise.race([handshake.pid, Promise.resolve(0)]);
    if (rootPid > 1) signalPid(rootPid, 'SIGKILL');
    removeOutputDir(ioDir);
    const why = setupErr.trim().split('\n').filter(Boolean).at(-1);
    const timedOut = (err as Error).message === 'timeout';
    throw new JobError(
      ErrorCodes.JOB_ABORTED,
      timedOut
        ? `the isolated job did not start within ${timeoutMs} ms${why ? `: ${why}` : ''}`
        : `cannot start the isolated job: ${why ?? `set-up exited with status ${exit?.code ?? exit?.signal ?? '?'}`}`,
      { hint: exit?.code === SETUP_FAILED_STATUS || !why ? 'ckpt run --isolate needs root, util-linux unshare and bash' : undefined },
    );
  } finally {
    if (timer) clearTimeout(timer);
  }
  const rootPid = await handshake.pid;
  child.stdout!.resume();
  return new IsolatedJob({
    id,
    name: options.name ?? id,
    command,
    rootPid,
    ioDir,
    net: options.net === true,
    output: options.output,
    register: options.register,
    killGraceMs: options.killGraceMs,
    ...(options.schedule ? { schedule: options.schedule } : {}),
    waitRoot: async () => {
      const exit = await exited;
      // The outer script is gone; nothing of the job may outlive it in its group.
      if (child.pid && child.pid > 1) signalGroup(child.pid, 'SIGKILL');
      // bash reports a signalled init as 128+N; keep that as the status.
      return exit;
    },
  });
}

