// An isolated mpirun job across the nodes of a Slurm allocation: one isolated
// tree per node. mpirun's tree (the head) runs where `ckpt run` runs; Open MPI's
// rsh launcher starts each other node's orted through AGENT_SCRIPT, which asks
// PartLauncher (outside the job) to start it there — `srun --overlap -w NODE ckpt
// run --isolate -- orted …` — and exits once it has: nothing of Slurm (no srun, no
// connection to slurmstepd) is inside any tree, so CRIU can dump every node's part
// whole (docs/notes/openmpi-across-nodes.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CHECKPOINTED } from '../util/exit-status.js';
import { signalPid } from '../util/signals.js';
import { ckptArgv, isNodeName, srunOnNode } from './nodes-slurm.js';

/**
 * Open MPI's launch agent inside the head's tree: `AGENT HOST CMD…`. Writes a
 * request (host, command line) beside itself, in the job's output directory, and
 * waits for ckpt's answer (at most a minute). `--daemonize` is dropped: the
 * part's pid 1 must keep orted as its child.
 */
export const AGENT_SCRIPT = String.raw`#!/bin/bash
set -u
dir=$(dirname "$0"); host=$1; shift
cmd=" $* "; cmd=${'$'}{cmd// --daemonize / }
req="$dir/part-$$-$RANDOM"
printf '%s\n%s\n' "$host" "$cmd" >"$req.tmp" && mv "$req.tmp" "$req.req" || exit 1
# ckpt answers at once; without an answer (its launcher gone) mpirun hears a failed launch.
for _ in $(seq 1200); do
  [ -e "$req.ok" ] && exit 0
  [ -e "$req.err" ] && exit 1
  sleep 0.05
done
echo "ckpt: no answer to the request to start orted on $host" >&2
exit 1
`;

/** One node's part: the isolated job (`NAME@HOST`) that holds the orted of that node. */
export interface NodePart {
  host: string;
  name: string;
}

/** The isolated job name of the part on `host`. */
export const partName = (job: string, host: string): string => `${job}@${host}`;

export interface PartLauncherOptions {
  /** The head's output directory (host path), where AGENT_SCRIPT leaves its requests. */
  ioDir: string;
  /** The job's name: parts are NAME@HOST. */
  name: string;
  env?: NodeJS.ProcessEnv;
  /** Every part started (after its srun began). */
  onPart: (part: NodePart) => void;
  /** A part that could not start or failed (not one ended by its checkpoint): the job cannot go on. */
  onFailure: (message: string) => void;
  log: (line: string) => void;
}

const POLL_MS = 50;

/** Serves AGENT_SCRIPT's requests: starts each node's part with srun. */
export class PartLauncher {
  private readonly timer: NodeJS.Timeout;
  private readonly sruns = new Map<string, { child: ChildProcess; exited: Promise<number | null> }>();
  private stopping = false;

  constructor(private readonly o: PartLauncherOptions) {
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  private poll(): void {
    let names: string[];
    try {
      names = readdirSync(this.o.ioDir).filter((n) => /^part-\d+-\d+\.req$/.test(n));
    } catch {
      return; // the job has ended and its directory is gone
    }
    for (const n of names) {
      const base = join(this.o.ioDir, n.slice(0, -'.req'.length));
      let text = '';
      try {
        // Read and answered without following links: the directory is the job's too.
        const fd = openSync(`${base}.req`, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          text = readFileSync(fd, 'utf8');
        } finally {
          closeSync(fd);
        }
        rmSync(`${base}.req`);
      } catch {
        continue;
      }
      const nl = text.indexOf('\n');
      const host = text.slice(0, nl);
      const command = text.slice(nl + 1).trim();
      const answer = (ok: boolean) => {
        try {
          writeFileSync(`${base}.${ok ? 'ok' : 'err'}`, '', { mode: 0o600, flag: 'wx' });
        } catch {
          // already there (not ours to overwrite): the agent script times out
        }
      };
      if (!isNodeName(host) || !/(^|[\s/])orted\s/.test(`${command} `) || this.sruns.has(host)) {
        this.o.onFailure(`mpirun asked for an orted on '${host.slice(0, 80)}' that ckpt cannot start (one per node, a Slurm node name, orted's command line)`);
        answer(false);
        continue;
      }
      try {
        this.start(host, command);
        answer(true);
      } catch (err) {
        this.o.onFailure(`cannot start the part on ${host}: ${(err as Error).message}`);
        answer(false);
      }
    }
  }

  private start(host: string, command: string): void {
    const env = this.o.env ?? process.env;
    const name = partName(this.o.name, host);
    const argv = ckptArgv(['run', '--isolate', '--name', name, '--', 'bash', '-c', command]);
    const { file, args } = srunOnNode(host, argv, env);
    // No user namespace for a part: see launch.ts (nodes).
    const child = spawn(file, args, { env: { ...env, CKPT_ISOLATE_USERNS: '0' }, stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => {
      child.on('error', (err) => {
        this.o.log(`ckpt: srun for the part on ${host}: ${err.message}`);
        resolve(null);
      });
      child.on('close', (code) => resolve(code));
    });
    this.sruns.set(host, { child, exited });
    this.o.onPart({ host, name });
    void exited.then((code) => {
      if (this.stopping || code === 0 || code === EXIT_CHECKPOINTED) return;
      this.o.onFailure(`the part on ${host} ended with status ${code ?? 'unknown'}`);
    });
  }

  /** Stops serving requests. */
  close(): void {
    clearInterval(this.timer);
  }

  /** Waits for every part's srun; after `graceMs`, ends those still running (SIGTERM: srun ends its step). */
  async finish(graceMs: number): Promise<void> {
    this.close();
    this.stopping = true;
    const all = Promise.all([...this.sruns.values()].map((s) => s.exited));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    if ((await Promise.race([all, late])) === 'late') {
      for (const s of this.sruns.values()) if (s.child.exitCode === null && s.child.pid) signalPid(s.child.pid, 'SIGTERM');
      await all;
    }
    clearTimeout(timer);
  }
}
