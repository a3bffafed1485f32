// Child processes: each in its own process group, ended by group with escalation.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { signalGroup, signalPid } from './signals.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Spawns a command as the leader of a new process group (and session). */
export function spawnGroup(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(command, args, { ...options, detached: true });
}

export function waitExit(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * Ends a child's whole process group: SIGTERM, then SIGKILL after `graceMs`.
 * Resolves when the leader has exited.
 */
export async function terminateGroup(child: ChildProcess, graceMs = 2000): Promise<Exit> {
  const pid = child.pid;
  const exited = waitExit(child);
  if (pid === undefined || pid <= 1) return exited;
  if (child.exitCode === null && child.signalCode === null) signalGroup(pid, 'SIGTERM') || signalPid(pid, 'SIGTERM');
  const timer = setTimeout(() => {
    signalGroup(pid, 'SIGKILL');
  }, graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
    // The leader is gone; members that ignored SIGTERM must not outlive it.
    signalGroup(pid, 'SIGKILL');
  }
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
}

/**
 * Runs a short helper tool to completion and collects its output. Its stdin is
 * /dev/null: nothing is written to the child, so one that exits at once cannot
 * raise EPIPE. On timeout its process group is ended.
 */
export async function runTool(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const child = spawnGroup(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: options.env } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer =
    options.timeoutMs === undefined ? undefined : setTimeout(() => void terminateGroup(child, 500), options.timeoutMs);
  try {
    const exit = await waitExit(child);
    // Let the pipes drain: 'exit' can come before the last 'data'.
    await Promise.all(
      [child.stdout, child.stderr].map((s) => (s && !s.readableEnded ? new Promise((r) => s.once('close', r)) : undefined)),
    );
    return { ...exit, stdout, stderr };
  } finally {
    if (timer) clearTimeout(timer);
  }
}
