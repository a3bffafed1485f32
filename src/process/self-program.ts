// Self checkpoints of programs not written in Node (Python, C, Fortran…): `ckpt-self
// --dir STORE -- PROGRAM ARGS` runs PROGRAM under a small supervisor that speaks a
// line protocol with it on one descriptor (docs/SELF-PROTOCOL.md). The supervisor is
// the process ckpt checkpoints and restarts (with `checkpoint()` and the `self`
// checkpointer); the program writes and reads its own state file when asked.
//
//   program → ckpt   `checkpoint`            take a checkpoint now (in a job: collective)
//                    `safepoint`             (a job's rank) a checkpoint may stop here
//                    `saved` | `error TEXT`  answer to `save`
//                    `restored`              done reading CKPT_SELF_RESTORE
//   ckpt → program   `save PATH`             write the whole state to PATH (new file, 0600)
//                    `continue SEQ`          snapshot SEQ is committed
//                    `go`                    (answer to safepoint/checkpoint) no snapshot here
//                    `failed CODE TEXT`      the checkpoint failed; nothing was kept
//
// Under `ckpt run --crs self` (CKPT_JOB_ID set) the supervisor is the rank: it joins
// the job through ckpt/rank, and the program's `safepoint` lines are its safe points.
import { signalStatus } from '../util/exit-status.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsConstants, lstatSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';
import { envNumber, envString } from '../config.js';
import { RESTART_SNAPSHOT_ENV } from '../crs/fresh-start.js';
import { registerSelf, registerSelfFiles } from '../crs/self/index.js';
import { guardInspector } from '../util/inspector.js';
import { checkpoint } from './checkpoint.js';
import { removeOwnDir } from '../util/remove-tree.js';

/** The protocol's version, in CKPT_SELF_PROTOCOL. */
export const SELF_PROTOCOL_VERSION = '1';
/** The control descriptor in the program (a bidirectional stream socket). */
export const SELF_FD = 3;
/** A line longer than this ends the session (the protocol's lines are short). */
const MAX_LINE = 8192;

export interface SelfProgramOptions {
  /** The snapshot store (a single process; a job's rank uses the job's). */
  dir?: string;
  /** The program and its arguments. */
  argv: string[];
  /** Outside triggers: this signal to the supervisor asks the program for a checkpoint (default SIGUSR2). */
  triggerSignal?: NodeJS.Signals;
  onProgress?: (message: string) => void;
}

/** Reads the program's lines one at a time; `next()` waits for the next one (null at the end). */
class Lines {
  private buf = '';
  private queue: string[] = [];
  private waiters: ((line: string | null) => void)[] = [];
  private ended = false;
  private onLine?: (line: string) => void;

  constructor(socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      if (this.buf.length > MAX_LINE && !this.buf.slice(0, MAX_LINE).includes('\n')) {
        process.stderr.write(`ckpt-self: the program wrote a line of over ${MAX_LINE} bytes on its protocol descriptor: closed (docs/SELF-PROTOCOL.md)\n`);
        socket.destroy();
        return;
      }
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).replace(/\r$/, '');
        this.buf = this.buf.slice(i + 1);
        this.push(line);
      }
    });
    const end = (): void => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(null);
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', () => {});
  }

  private push(line: string): void {
    const w = this.waiters.shift();
    if (w) w(line);
    else if (this.onLine) this.onLine(line);
    else this.queue.push(line);
  }

  /** Where lines go that no `next()` waits for (queued ones first). */
  handle(fn: (line: string) => void): void {
    this.onLine = fn;
    for (const line of this.queue.splice(0)) fn(line);
  }

  /**
   * The next line (a reply), null when the program closed its end or exited, or
   * undefined when none came within `timeoutMs` (0: no limit); a line after that is
   * queued, and dropped before the next request (dropQueued).
   */
  next(timeoutMs = 0): Promise<string | null | undefined> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = timeoutMs > 0 ? setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(undefined);
      }, timeoutMs) : undefined;
      const waiter = (line: string | null): void => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push(waiter);
    });
  }

  /** Lines nobody asked for (a late answer to a request that timed out): never taken as the next request's answer. */
  dropQueued(): void {
    this.queue.length = 0;
  }
}

/**
 * Runs the program under the protocol until it exits; resolves with its exit status
 * (128 + the signal's number when a signal ended it). In a process that `ckpt restart`
 * started from a snapshot, the program is started with CKPT_SELF_RESTORE first.
 */
export async function runSelfProgram(options: SelfProgramOptions): Promise<number> {
  const [command, ...args] = options.argv;
  const inJob = envString('CKPT_JOB_ID') !== undefined;
  if (!command) throw new CkptError(ErrorCodes.USAGE, 'no program to run (ckpt-self --dir STORE -- PROGRAM ARGS…)');
  if (!inJob && (typeof options.dir !== 'string' || options.dir === '')) throw new CkptError(ErrorCodes.USAGE, 'ckpt-self needs --dir STORE (outside a job)');
  const dir = options.dir ?? '';
  void guardInspector((line) => process.stderr.write(`ckpt-self: ${line}\n`));

  let child: ChildProcess | undefined;
  let lines: Lines | undefined;
  let socket: Socket | undefined;
  let exited: Promise<number> | undefined;

  const send = (line: string): void => {
    if (socket && !socket.destroyed && socket.writable) socket.write(`${line}\n`);
  };

  const start = async (restorePath?: string): Promise<void> => {
    const env: NodeJS.ProcessEnv = { ...process.env, CKPT_SELF_FD: String(SELF_FD), CKPT_SELF_PROTOCOL: SELF_PROTOCOL_VERSION };
    if (!inJob) env.CKPT_SELF_STORE = dir;
    delete env[RESTART_SNAPSHOT_ENV];
    delete env.CKPT_SELF_RESTORE;
    if (restorePath) env.CKPT_SELF_RESTORE = restorePath;
    // A 'pipe' beyond stdio is a socketpair in libuv: one descriptor, both directions.
    const c = spawn(command, args, { env, stdio: ['inherit', 'inherit', 'inherit', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      c.once('spawn', resolve);
      c.once('error', (err) =>
        reject(new CkptError((err as NodeJS.ErrnoException).code === 'ENOENT' ? ErrorCodes.COMMAND_NOT_FOUND : ErrorCodes.PERMISSION, `cannot start ${command}: ${err.message}`, { cause: err })),
      );
    });
    child = c;
    socket = c.stdio[SELF_FD] as Socket;
    lines = new Lines(socket);
    exited = new Promise((resolve) =>
      c.once('exit', (code, signal) => resolve(code ?? (signal ? signalStatus(signal) : 128))),
    );
  };

  /** The program's answer to `request` within the phase timeout (CKPT_CHECKPOINT_PHASE_MS): a program that never answers must not hold its checkpoint or restart for ever. */
  const answer = async (what: 'save' | 'restore', request?: string): Promise<string | null> => {
    const ms = envNumber('CKPT_CHECKPOINT_PHASE_MS');
    lines!.dropQueued();
    if (request) send(request);
    const reply = await lines!.next(ms);
    if (reply !== undefined) return reply;
    throw new CkptError(ErrorCodes.TIMEOUT, `the program did not answer ${what === 'save' ? '`save`' : 'its restore (`restored`)'} within ${ms} ms`, {
      hint: 'CKPT_CHECKPOINT_PHASE_MS sets how long it may take (docs/SELF-PROTOCOL.md)',
    });
  };
  /** `save PATH` and its answer. */
  const saveTo = async (path: string): Promise<void> => {
    if (!lines) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, 'the program is not running');
    const reply = await answer('save', `save ${path}`);
    if (reply === 'saved') return;
    if (reply === null) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, 'the program ended before it saved its state');
    if (reply.startsWith('error')) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `the program could not save its state: ${reply.slice(5).trim() || 'no reason given'}`);
    throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `the program answered \`${reply.slice(0, 80)}\` to save, not \`saved\``);
  };
  /** Starts the program on a saved state and waits until it has read it. */
  const restoreFrom = async (path: string): Promise<void> => {
    await start(path);
    let reply: string | null;
    try {
      reply = await answer('restore');
    } catch (err) {
      // Not restored: the program must not run on without its supervisor.
      if (child?.pid !== undefined && child.pid > 1 && child.exitCode === null) child.kill('SIGKILL');
      throw err;
    }
    if (reply === 'restored') return;
    if (reply === null) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, 'the program ended before it restored its state');
    throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `the program answered \`${reply.slice(0, 80)}\` to a restore, not \`restored\``);
  };

  // A job's rank hands its state to ckpt/rank as bytes, exchanged with the program
  // through a file in a private directory of ours (0700; the file 0600, removed at once).
  let scratch: string | undefined;
  const scratchFile = (): string => {
    scratch ??= mkdtempSync(join(tmpdir(), 'ckpt-self-'));
    return join(scratch, 'state');
  };
  if (inJob) {
    registerSelf({
      async save() {
        const path = scratchFile();
        rmSync(path, { force: true });
        try {
          await saveTo(path);
          if (!lstatSync(path, { throwIfNoEntry: false })?.isFile()) {
            throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, 'the program reported its state saved, but wrote no state file', {
              hint: 'write the state to the path of the `save` request, then answer `saved` (docs/SELF-PROTOCOL.md)',
            });
          }
          return new Uint8Array(readFileSync(path));
        } finally {
          rmSync(path, { force: true });
        }
      },
      async load(state) {
        const path = scratchFile();
        rmSync(path, { force: true });
        const bytes = state instanceof Uint8Array ? state : Buffer.from(JSON.stringify(state ?? null));
        const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fsConstants;
        const fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        try {
          for (let at = 0; at < bytes.byteLength; ) at += writeSync(fd, bytes, at);
        } finally {
          closeSync(fd);
        }
        try {
          await restoreFrom(path);
        } finally {
          try {
            unlinkSync(path);
          } catch {}
        }
      },
    });
  } else {
    // The program writes its state straight into the snapshot being written (through
    // its descriptor) and reads it from the snapshot's checked descriptor on restart:
    // that path is valid until it is closed, so the program says when it has read it.
    registerSelfFiles({ saveFile: saveTo, loadFile: restoreFrom });
  }

  // init() takes CKPT_RESTART_SNAPSHOT out of the environment (a restarted rank's part).
  const restarting = envString(RESTART_SNAPSHOT_ENV) !== undefined;
  const comm = inJob ? await (await import('../rank/index.js')).init() : undefined;

  // Requests, one at a time: the program's (`checkpoint`, `safepoint`) and outside triggers.
  let busy: Promise<void> = Promise.resolve();
  const serve = (what: 'checkpoint' | 'safepoint' | 'trigger'): void => {
    busy = busy.then(async () => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      try {
        let result;
        if (comm) result = what === 'checkpoint' ? await comm.checkpoint() : await comm.safePoint();
        else result = await checkpoint({ dir, crs: 'self', onProgress: options.onProgress });
        if (what !== 'trigger' || result) send(result ? `continue ${result.snapshot.seq}` : 'go');
      } catch (err) {
        const e = err instanceof CkptError ? err : new CkptError(ErrorCodes.CHECKPOINT_FAILED, (err as Error).message);
        send(`failed ${e.code} ${e.message.replace(/\s+/g, ' ')}`);
        options.onProgress?.(`checkpoint failed: ${e.message} [${e.code}]`);
        // Asked by a signal from outside, the failure is said where whoever sent it can see it.
        if (what === 'trigger' && !options.onProgress) process.stderr.write(`ckpt-self: checkpoint failed: ${e.message} [${e.code}]\n`);
      }
    });
  };
  // Installed before the program starts: a trigger never meets a signal's default action.
  // (In a job, `ckpt checkpoint JOB` is the trigger: the program is asked at its next safepoint.)
  const trigger = options.triggerSignal ?? 'SIGUSR2';
  const onTrigger = (): void => {
    if (!comm) serve('trigger');
  };
  // Ctrl-C and SIGTERM end the program (it shares our process group for a terminal's
  // Ctrl-C; a kill of the supervisor alone is passed on), and we end with it.
  const forward = (sig: NodeJS.Signals) => (): void => {
    if (child?.pid && child.pid > 1 && child.exitCode === null) child.kill(sig);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on(trigger, onTrigger);
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    if (restarting) {
      // Loads the snapshot's state: starts the program with CKPT_SELF_RESTORE. (A job's
      // restarted rank loads at its first safe point.)
      try {
        if (comm) await comm.safePoint();
        else await checkpoint({ dir, crs: 'self', onProgress: options.onProgress });
      } catch (err) {
        onTerm();
        throw err;
      }
    }
    if (!child) await start();
    lines!.handle((line) => {
      if (line === 'checkpoint' || (line === 'safepoint' && comm)) serve(line);
      else if (line === 'safepoint') send('go');
      else send(`failed ${ErrorCodes.USAGE} unexpected request: ${line.slice(0, 80)}`);
    });
    const status = await exited!;
    // A rank whose program ended well leaves the job properly; any other exit is its failure.
    if (comm && status === 0) await comm.finalize();
    return status;
  } finally {
    process.off(trigger, onTrigger);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    socket?.destroy();
    if (scratch) removeOwnDir(scratch);
  }
}
