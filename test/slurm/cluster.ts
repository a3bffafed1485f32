// A real Slurm cluster for tests: a private munge, slurmctld and N slurmd "nodes" on
// this one machine, started by a test and torn down after it. How it works and its
// traps: docs/TESTING-SLURM.md.
//
//   host pid ns ── unshare --pid --fork --kill-child --mount-proc --net --uts (the test's child)
//                    └─ bash init.sh           pid 1 of the cluster's pid namespace; UTS "login";
//                         │                    net ns "controller" with bridge br0 (169.254.77.1);
//                         │                    private mount ns with DIR/etc/hosts over /etc/hosts
//                         ├─ munged            own key and socket under DIR/munge
//                         ├─ slurmctld -D
//                         └─ slurmd -D -N nI   each in its own net ns (veth into br0, 169.254.77.1I)
//                                              and UTS ns (hostname nI), both bound to DIR/ns/nI.*
//
// Clients (srun, sbatch, scontrol, ckpt, …) are run with nsenter into the controller's
// net, mount, UTS and pid namespaces, with SLURM_CONF set. Everything lives in one temp
// directory; teardown is one SIGKILL to the namespace's pid 1, and nothing escapes it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PartitionSpec {
  name: string;
  /** Nodes of the partition (Slurm hostlist); all nodes by default. */
  nodes?: string;
  default?: boolean;
  /** Higher preempts lower under preempt/partition_prio. */
  priorityTier?: number;
  /** Seconds between the preemption signal (USR1 with preempt_send_user_signal, then TERM) and the kill. */
  graceTime?: number;
  /** REQUEUE, CANCEL, OFF, …; the cluster's PreemptMode (REQUEUE) when unset. */
  preemptMode?: string;
  /** More `Key=Value` words for the partition line. */
  extra?: string;
}

export interface ClusterOptions {
  /** Number of slurmd nodes, n1..nN (default 3). */
  nodes?: number;
  /** CPUs each node claims (SlurmdParameters=config_overrides lets it claim more than the VM has; default 2). */
  cpusPerNode?: number;
  /** Default: `low` (Default, PriorityTier=1, GraceTime=5, REQUEUE) and `high` (PriorityTier=10, PreemptMode=OFF). */
  partitions?: PartitionSpec[];
  /** More slurm.conf lines, appended before the node and partition lines (a later key wins in Slurm). */
  extraConfig?: string[];
  /** The first three octets of the cluster's /24 (default 169.254.77, link-local; only inside our namespaces). */
  subnet?: string;
  /** How long to wait for every node to be idle in sinfo (default 60 s). */
  readyTimeoutMs?: number;
  /**
   * Directories under the cluster's dir (relative names, e.g. `['local']`) that are a
   * different, empty directory on each node: every slurmd (and so every job step) runs
   * in a mount namespace of its own with a tmpfs over DIR/NAME; the login host sees the
   * plain directory. For "not on shared storage" tests.
   */
  nodeLocalDirs?: string[];
}

export interface SlurmHost {
  name: string;
  address: string;
}

export interface RunOptions {
  /** Added to the environment (which is the test's, without SLURM_*, plus SLURM_CONF). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGKILL, inside the namespace) after this long (default 60 s). */
  timeoutMs?: number;
  /** Written to stdin, which is then closed. */
  input?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A long-running client: `child` is nsenter; kill() signals the command itself, inside the namespace. */
export interface ClusterProcess {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<RunResult>;
  kill(signal?: NodeJS.Signals): Promise<RunResult>;
}

export type JobInfo = Record<string, string>;

export const TERMINAL_JOB_STATES = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE'];

const REQUIRED_PROGRAMS = ['slurmctld', 'slurmd', 'munged', 'srun', 'sbatch', 'scontrol', 'sinfo', 'squeue', 'unshare', 'nsenter', 'ip', 'bash'];

/** Finds a program on PATH or in the sbin directories (a CI shell may lack /usr/sbin on PATH). */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Tests that need Slurm skip without it (or without root) — except when
 * CKPT_REQUIRE_SLURM=1 (CI), where they fail.
 */
export function needSlurm(t: TestContext): boolean {
  const missing = REQUIRED_PROGRAMS.filter((p) => findProgram(p) === undefined);
  let reason: string | undefined;
  if (missing.length > 0) reason = `not installed: ${missing.join(', ')} (apt-get install slurm-wlm munge libpmix2)`;
  else if (process.getuid?.() !== 0) reason = 'the Slurm test cluster needs root (namespaces, bind mounts)';
  if (reason === undefined) return true;
  if (process.env.CKPT_REQUIRE_SLURM === '1') throw new Error(`Slurm required (CKPT_REQUIRE_SLURM=1) but ${reason}`);
  t.skip(`Slurm unavailable: ${reason}`);
  return false;
}

/** The environment for clients: the test's, without any SLURM_* (a test run inside a real Slurm job must not leak it). */
function clientEnv(conf: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLURM_') && !k.startsWith('SBATCH_') && !k.startsWith('SALLOC_')) env[k] = v;
  const path = (env.PATH ?? '/usr/bin:/bin').split(delimiter);
  for (const d of ['/usr/sbin', '/sbin']) if (!path.includes(d)) path.push(d);
  return { ...env, PATH: path.join(delimiter), SLURM_CONF: conf, ...extra };
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string; exited: Promise<RunResult> } {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<RunResult>((resolve) => {
    child.on('error', (err) => {
      stderr += String(err);
      resolve({ code: null, signal: null, stdout, stderr });
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { stdout: () => stdout, stderr: () => stderr, exited };
}

/** The children of a process (host pids), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** Never a pid <= 1 (1 is init; -1 and 0 are everyone and the group). */
function signalPid(pid: number, signal: NodeJS.Signals): void {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`refusing to signal pid ${pid}`);
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** `Key=Value Key=Value …` (scontrol -o) into a record; values stop at whitespace. */
export function parseKeyValues(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(?:^|\s)([A-Za-z][\w:/.]*)=(\S*)/g)) if (!(m[1]! in out)) out[m[1]!] = m[2]!;
  return out;
}

function initScript(): string {
  // $1 = the cluster directory, $2 = number of nodes, $3 = subnet (three octets).
  // Runs as pid 1 of the cluster's pid namespace, in fresh net, UTS and mount namespaces.
  return `#!/bin/bash
set -euo pipefail
D=$1; N=$2; NET=$3
export SLURM_CONF="$D/etc/slurm.conf"
hostname login
mount --bind "$D/etc/hosts" /etc/hosts
ip link set lo up
ip link add br0 type bridge
ip addr add "$NET.1/24" dev br0
ip link set br0 up
for i in $(seq 1 "$N"); do
  touch "$D/ns/n$i.net" "$D/ns/n$i.uts"
  # A net and a UTS namespace per node, kept by bind mounts on DIR/ns/nI.* (this mount
  # namespace only). Its veth's other leg goes to pid 1: this shell, the controller.
  unshare --net="$D/ns/n$i.net" --uts="$D/ns/n$i.uts" sh -c "
    hostname n$i
    ip link set lo up
    ip link add eth0 type veth peer name vn$i netns 1
    ip addr add $NET.$((10 + i))/24 dev eth0
    ip link set eth0 up"
  ip link set "vn$i" master br0 up
done
munged -F -f --socket="$D/munge/munge.socket" --key-file="$D/munge-key/munge.key" \\
  --pid-file="$D/run/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge-key/seed" \\
  </dev/null >>"$D/log/munged.out" 2>&1 &
while [ ! -S "$D/munge/munge.socket" ]; do
  kill -0 $! 2>/dev/null || { echo "munged exited: $(tail -5 "$D/log/munged.log")" >&2; exit 1; }
  sleep 0.02
done
MUNGED=$!
slurmctld -D -f "$SLURM_CONF" </dev/null >>"$D/log/slurmctld.out" 2>&1 &
CTLD=$!
echo $CTLD >"$D/run/slurmctld.pid"
for i in $(seq 1 "$N"); do bash "$D/start-node.sh" "n$i"; done
echo READY
# Until the test closes stdin (or dies): then this, pid 1, exits and the kernel kills
# everything in the namespace. bash reaps orphans (slurmstepd's children) meanwhile.
# Once a second: says so if slurmctld or munged died (a bad slurm.conf: fail fast).
said=
while :; do
  rc=0; read -r -t 1 _ || rc=$?
  [ "$rc" -gt 128 ] || exit 0
  if [ -z "$said" ] && ! { kill -0 $CTLD && kill -0 $MUNGED; } 2>/dev/null; then echo DIED; said=1; fi
done
`;
}

function startNodeScript(localDirs: string[]): string {
  return `#!/bin/bash
# start-node.sh nI: slurmd for node nI in its namespaces, in the background (run inside the cluster).
set -eu
D=$(cd "$(dirname "$0")" && pwd)
n=$1
LOCAL_DIRS=(${localDirs.map((d) => `'${d}'`).join(' ')})
if [ \${#LOCAL_DIRS[@]} -eq 0 ]; then
  nsenter --net="$D/ns/$n.net" --uts="$D/ns/$n.uts" slurmd -D -N "$n" -f "$D/etc/slurm.conf" </dev/null >>"$D/log/slurmd-$n.out" 2>&1 &
else
  # Node-local directories: slurmd (and every job step under it) in a mount namespace
  # of its own, with a fresh tmpfs over each. unshare and bash exec: $! is slurmd.
  nsenter --net="$D/ns/$n.net" --uts="$D/ns/$n.uts" unshare --mount --propagation private bash -c '
    D=$1; n=$2; shift 2
    for d in "$@"; do mount -t tmpfs -o mode=0755 "ckpt-$n" "$D/$d"; done
    exec slurmd -D -N "$n" -f "$D/etc/slurm.conf"' start-node "$D" "$n" "\${LOCAL_DIRS[@]}" </dev/null >>"$D/log/slurmd-$n.out" 2>&1 &
fi
echo $! >"$D/run/slurmd-$n.pid"
`;
}

function slurmConf(dir: string, nodes: SlurmHost[], controller: SlurmHost, opts: ClusterOptions): string {
  const cpus = opts.cpusPerNode ?? 2;
  const partitions = opts.partitions ?? [
    { name: 'low', default: true, priorityTier: 1, graceTime: 5, preemptMode: 'REQUEUE' },
    { name: 'high', priorityTier: 10, preemptMode: 'OFF' },
  ];
  const lines = [
    'ClusterName=ckpttest',
    `SlurmctldHost=${controller.name}(${controller.address})`,
    'SlurmUser=root',
    'SlurmdUser=root',
    'AuthType=auth/munge',
    'CredType=cred/munge',
    // cred_expire=10: a requeued job may start again ~12 s later instead of ~121 s.
    `AuthInfo=socket=${dir}/munge/munge.socket,cred_expire=10`,
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool/%n`,
    `TmpFS=${dir}/tmp/%n`,
    `SlurmctldPidFile=${dir}/run/slurmctld.own.pid`,
    `SlurmdPidFile=${dir}/run/slurmd-%n.own.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd-%n.log`,
    'MailProg=/bin/true',
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'SlurmdParameters=config_overrides',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'MpiDefault=none',
    'ReturnToService=2',
    'JobRequeue=1',
    'SchedulerParameters=sched_interval=2,bf_interval=2',
    'KillWait=2',
    'SlurmdTimeout=10',
    'InactiveLimit=0',
    'PreemptType=preempt/partition_prio',
    'PreemptMode=REQUEUE',
    // The 22.05 spelling: PreemptParameters= makes every daemon and client exit.
    'SlurmctldParameters=preempt_send_user_signal',
    ...(opts.extraConfig ?? []),
    ...nodes.map((n) => `NodeName=${n.name} NodeAddr=${n.address} NodeHostname=${n.name} CPUs=${cpus} State=UNKNOWN`),
    ...partitions.map((p) =>
      [
        `PartitionName=${p.name}`,
        `Nodes=${p.nodes ?? 'ALL'}`,
        p.default ? 'Default=YES' : '',
        p.priorityTier !== undefined ? `PriorityTier=${p.priorityTier}` : '',
        p.graceTime !== undefined ? `GraceTime=${p.graceTime}` : '',
        p.preemptMode !== undefined ? `PreemptMode=${p.preemptMode}` : '',
        'MaxTime=INFINITE State=UP',
        p.extra ?? '',
      ].filter(Boolean).join(' '),
    ),
  ];
  return lines.join('\n') + '\n';
}

export class SlurmCluster {
  /** The temp directory that holds everything (configuration, keys, state, spool, logs). */
  readonly dir: string;
  /** slurm.conf (also in SLURM_CONF of every client). */
  readonly conf: string;
  readonly controller: SlurmHost;
  readonly nodes: SlurmHost[];
  /**
   * Milliseconds: initMs (namespaces made, daemons started), startMs (from startCluster()
   * to every node idle in sinfo), stopMs (kill to every process gone), removeMs (the directory).
   */
  readonly timings: { initMs?: number; startMs?: number; stopMs?: number; removeMs?: number } = {};
  private readonly unshare: ChildProcess;
  private unshareExited: Promise<RunResult>;
  private readonly initOut: () => string;
  private readonly t0 = Date.now();
  private initPid = 0;
  private stopped = false;
  private readonly clients = new Set<ClusterProcess>();

  /** Use startCluster(). */
  constructor(dir: string, controller: SlurmHost, nodes: SlurmHost[], subnet: string) {
    this.dir = dir;
    this.conf = join(dir, 'etc', 'slurm.conf');
    this.controller = controller;
    this.nodes = nodes;
    this.unshare = spawn(
      findProgram('unshare')!,
      ['--pid', '--fork', '--kill-child=SIGKILL', '--mount-proc', '--net', '--uts', '--propagation', 'private', '--', findProgram('bash')!, join(dir, 'init.sh'), dir, String(nodes.length), subnet],
      { stdio: ['pipe', 'pipe', 'pipe'], cwd: dir, env: clientEnv(this.conf) },
    );
    const c = collect(this.unshare);
    this.unshareExited = c.exited;
    this.initOut = c.stdout;
  }

  /** Waits for init.sh's READY, then for every node to be idle (sinfo). */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited: RunResult | undefined;
    void this.unshareExited.then((r) => (exited = r));
    while (!/^READY$/m.test(this.initOut())) {
      if (exited) throw new Error(`cluster init exited (${exited.code ?? exited.signal}): ${exited.stderr.trim()}\n${this.logTails()}`);
      if (Date.now() > deadline) throw new Error(`cluster init not ready in ${timeoutMs} ms: ${this.initOut()}\n${this.logTails()}`);
      await sleep(20);
    }
    this.timings.initMs = Date.now() - this.t0;
    const init = childrenOf(this.unshare.pid!);
    if (init.length !== 1 || !(init[0]! > 1)) throw new Error(`cannot find the cluster's pid 1 (children of unshare: ${init.join(',')})`);
    this.initPid = init[0]!;
    await this.waitForNodes(this.nodes.map((n) => n.name), ['idle'], deadline - Date.now());
  }

  /** The host pid of the cluster's pid 1 (init.sh): every daemon, job and client is below it. */
  get pid(): number {
    return this.initPid;
  }

  /** Has slurmctld or munged died (init.sh checks once a second)? */
  get daemonDied(): boolean {
    return /^DIED$/m.test(this.initOut());
  }

  /** nsenter into the controller's namespaces (net, mount with the private /etc/hosts, UTS, pid). */
  private nsenterArgs(cwd: string | undefined): string[] {
    if (this.stopped || this.initPid <= 1) throw new Error('the cluster is not running');
    return ['-t', String(this.initPid), '-n', '-m', '-u', '-p', `--wd=${cwd ?? this.dir}`, '--'];
  }

  /** Runs a client command (srun, sbatch, scontrol, ckpt, any program) on the login host (the controller's namespaces). */
  async run(cmd: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    const p = this.spawn(cmd, args, opts);
    if (opts.input !== undefined) p.child.stdin!.end(opts.input);
    const timer = setTimeout(() => void p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    try {
      return await p.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a command on node `node` (its net and UTS namespaces; same files, pids and users). */
  runOnNode(node: string, cmd: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    this.node(node);
    return this.run('nsenter', [`--net=${join(this.dir, 'ns', `${node}.net`)}`, `--uts=${join(this.dir, 'ns', `${node}.uts`)}`, '--', cmd, ...args], opts);
  }

  /** Starts a long-running client; stopped with the cluster at the latest. */
  spawn(cmd: string, args: string[] = [], opts: RunOptions = {}): ClusterProcess {
    const child = spawn(findProgram('nsenter')!, [...this.nsenterArgs(opts.cwd), cmd, ...args], {
      env: clientEnv(this.conf, opts.env),
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const c = collect(child);
    const proc: ClusterProcess = {
      child,
      stdout: c.stdout,
      stderr: c.stderr,
      exited: c.exited,
      // nsenter forks the command into the pid namespace and does not forward signals: signal the command.
      kill: async (signal: NodeJS.Signals = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
          const inner = childrenOf(child.pid);
          if (inner.length > 0) for (const pid of inner) signalPid(pid, signal);
          else signalPid(child.pid, signal);
        }
        return c.exited;
      },
    };
    this.clients.add(proc);
    void c.exited.then(() => this.clients.delete(proc));
    return proc;
  }

  private node(name: string): SlurmHost {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name} (nodes: ${this.nodes.map((x) => x.name).join(' ')})`);
    return n;
  }

  /** Runs a command that must succeed; returns its stdout. */
  async check(cmd: string, args: string[] = [], opts: RunOptions = {}): Promise<string> {
    const r = await this.run(cmd, args, opts);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim()} ${r.stdout.trim()}`);
    return r.stdout;
  }

  /** Submits a batch script (text) with sbatch ARGS; returns the job id. */
  async sbatch(script: string, args: string[] = [], opts: RunOptions = {}): Promise<string> {
    const jobs = join(this.dir, 'jobs');
    mkdirSync(jobs, { recursive: true, mode: 0o755 });
    const file = join(jobs, `job-${Date.now()}-${randomBytes(3).toString('hex')}.sh`);
    writeFileSync(file, script, { mode: 0o755 });
    const out = await this.check('sbatch', ['--parsable', ...args, file], opts);
    const id = /^(\d+)/.exec(out.trim())?.[1];
    if (!id) throw new Error(`sbatch printed no job id: ${out}`);
    return id;
  }

  /** `scontrol show job -o ID` as a record (JobState, Restarts, NodeList, ExitCode, …); null once Slurm forgot it. */
  async job(jobId: string): Promise<JobInfo | null> {
    const r = await this.run('scontrol', ['show', 'job', '-o', jobId]);
    if (r.code !== 0) {
      if (/Invalid job id/i.test(r.stderr)) return null;
      throw new Error(`scontrol show job ${jobId}: ${r.stderr.trim()}`);
    }
    return parseKeyValues(r.stdout.trim());
  }

  /** Polls the job (every 250 ms) until `done(job)`; fails at the timeout, or at once when `fail(job)` says so. */
  async waitForJob(jobId: string, done: (job: JobInfo) => boolean, what: string, timeoutMs = 60_000, fail?: (job: JobInfo) => boolean): Promise<JobInfo> {
    const deadline = Date.now() + timeoutMs;
    let last: JobInfo | null = null;
    for (;;) {
      last = await this.job(jobId);
      if (last && done(last)) return last;
      if (this.daemonDied) throw new Error(`slurmctld or munged died: ${JSON.stringify(last)}\n${this.logTails()}`);
      if (last && fail?.(last)) throw new Error(`job ${jobId} will not be ${what}: ${JSON.stringify(last)}\n${this.logTails()}`);
      if (Date.now() > deadline) throw new Error(`job ${jobId} not ${what} in ${timeoutMs} ms: ${JSON.stringify(last)}\n${this.logTails()}`);
      await sleep(250);
    }
  }

  /**
   * Polls the job until its JobState is one of `states`. Fails at once if it reaches
   * another terminal state (COMPLETED, FAILED, …) than those wanted, or at the timeout.
   */
  waitForJobState(jobId: string, states: string | string[], timeoutMs = 60_000): Promise<JobInfo> {
    const want = (Array.isArray(states) ? states : [states]).map((s) => s.toUpperCase());
    return this.waitForJob(
      jobId,
      (j) => want.includes(j.JobState ?? ''),
      want.join('|'),
      timeoutMs,
      (j) => TERMINAL_JOB_STATES.includes(j.JobState ?? ''),
    );
  }

  /** Node name → its state as sinfo prints it (%t: idle, alloc, mix, down*, idle*, …). */
  async nodeStates(): Promise<Map<string, string>> {
    const out = await this.check('sinfo', ['-h', '-N', '-o', '%N %t']);
    const states = new Map<string, string>();
    for (const line of out.trim().split('\n')) {
      const [name, state] = line.trim().split(/\s+/);
      if (name && state) states.set(name, state);
    }
    return states;
  }

  /**
   * Polls sinfo until each of `nodes` is in one of `states`, compared exactly as sinfo's
   * %t prints them: a node that does not respond has a `*` (`idle*`, `down*`).
   */
  async waitForNodes(nodes: string[], states: string[], timeoutMs = 60_000): Promise<Map<string, string>> {
    const deadline = Date.now() + timeoutMs;
    let last = new Map<string, string>();
    let error = '';
    for (;;) {
      try {
        last = await this.nodeStates();
        if (nodes.every((n) => states.includes(last.get(n) ?? ''))) return last;
      } catch (err) {
        error = (err as Error).message; // slurmctld not answering yet
      }
      if (this.daemonDied) throw new Error(`slurmctld or munged died: ${JSON.stringify([...last])} ${error}\n${this.logTails()}`);
      if (Date.now() > deadline) throw new Error(`nodes ${nodes.join(',')} not ${states.join('|')} in ${timeoutMs} ms: ${JSON.stringify([...last])} ${error}\n${this.logTails()}`);
      await sleep(100);
    }
  }

  /** Signals node `name`'s slurmd (SIGKILL by default): the node then goes down after SlurmdTimeout (10 s). */
  async killNode(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.node(name);
    const pid = Number(readFileSync(join(this.dir, 'run', `slurmd-${name}.pid`), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`bad slurmd pid for ${name}: ${pid}`);
    // The pid is one of the cluster's pid namespace: kill from inside it.
    await this.check('kill', ['-s', signal.replace(/^SIG/, ''), String(pid)]);
  }

  /** Starts node `name`'s slurmd again (after killNode); with ReturnToService=2 the node comes back. */
  async startNode(name: string): Promise<void> {
    this.node(name);
    await this.check('bash', [join(this.dir, 'start-node.sh'), name]);
  }

  /** The last lines of every daemon log, for error messages. */
  logTails(lines = 15): string {
    const dir = join(this.dir, 'log');
    if (!existsSync(dir)) return '';
    return readdirSync(dir)
      .sort()
      .map((f) => {
        const text = readFileSync(join(dir, f), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
        return text ? `--- ${f}\n${text}` : '';
      })
      .filter(Boolean)
      .join('\n');
  }

  /** Kills everything (one SIGKILL to the namespace's pid 1) and removes the directory (kept with CKPT_SLURM_KEEP=1). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const t0 = Date.now();
    if (this.initPid > 1) signalPid(this.initPid, 'SIGKILL');
    else if (this.unshare.pid !== undefined && this.unshare.exitCode === null) signalPid(this.unshare.pid, 'SIGKILL'); // --kill-child takes pid 1 along
    this.unshare.stdin?.destroy();
    await this.unshareExited;
    // Clients' nsenter processes end as their commands (killed with the namespace) do.
    await Promise.all([...this.clients].map((c) => c.exited));
    this.timings.stopMs = Date.now() - t0;
    if (process.env.CKPT_SLURM_KEEP === '1') process.stderr.write(`slurm test cluster kept in ${this.dir}\n`);
    else {
      const t1 = Date.now();
      rmSync(this.dir, { recursive: true, force: true });
      this.timings.removeMs = Date.now() - t1;
    }
  }
}

/**
 * Starts a cluster for test `t` and stops it after the test. Call needSlurm(t) first.
 * Resolves once every node is idle in sinfo.
 */
export async function startCluster(t: TestContext | undefined, opts: ClusterOptions = {}): Promise<SlurmCluster> {
  const t0 = Date.now();
  const count = opts.nodes ?? 3;
  if (!(Number.isInteger(count) && count >= 1 && count <= 200)) throw new Error(`nodes: 1..200, not ${count}`);
  const localDirs = opts.nodeLocalDirs ?? [];
  for (const d of localDirs) if (!/^[\w.-]+(\/[\w.-]+)*$/.test(d) || d.split('/').includes('..')) throw new Error(`nodeLocalDirs: a relative path under the cluster's directory, not ${d}`);
  const subnet = opts.subnet ?? '169.254.77';
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new Error(`subnet: three octets, not ${subnet}`);
  // 0755: a job of a non-root user must reach the munge socket and slurm.conf.
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-slurm-'));
  chmodSync(dir, 0o755);
  for (const d of ['etc', 'ns', 'munge', 'run', 'log', 'state', 'spool', 'tmp', 'jobs']) mkdirSync(join(dir, d), { mode: 0o755 });
  mkdirSync(join(dir, 'munge-key'), { mode: 0o700 });
  writeFileSync(join(dir, 'munge-key', 'munge.key'), randomBytes(1024), { mode: 0o400 });
  const controller = { name: 'login', address: `${subnet}.1` };
  const nodes = Array.from({ length: count }, (_, i) => ({ name: `n${i + 1}`, address: `${subnet}.${11 + i}` }));
  for (const n of nodes) {
    mkdirSync(join(dir, 'spool', n.name), { mode: 0o755 });
    mkdirSync(join(dir, 'tmp', n.name), { mode: 0o1777 });
    chmodSync(join(dir, 'tmp', n.name), 0o1777);
  }
  writeFileSync(
    join(dir, 'etc', 'hosts'),
    ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback', `${controller.address} ${controller.name}`, ...nodes.map((n) => `${n.address} ${n.name}`)].join('\n') + '\n',
    { mode: 0o644 },
  );
  writeFileSync(join(dir, 'etc', 'slurm.conf'), slurmConf(dir, nodes, controller, opts), { mode: 0o644 });
  writeFileSync(join(dir, 'init.sh'), initScript(), { mode: 0o755 });
  for (const d of localDirs) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, 'start-node.sh'), startNodeScript(localDirs), { mode: 0o755 });

  const cluster = new SlurmCluster(dir, controller, nodes, subnet);
  t?.after(() => cluster.stop());
  try {
    await cluster.ready(opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    if (!t) await cluster.stop();
    throw err;
  }
  cluster.timings.startMs = Date.now() - t0;
  return cluster;
}

