// A CRIU RPC client: `criu swrk 3` over a SOCK_SEQPACKET socket pair (CRIU refuses
// stream sockets). One criu process serves one connection; NOTIFY callbacks are
// answered through `onNotify`.
import { unprivilegedArgs } from './locate/caps.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync } from 'node:fs';
import { CkptError, CriuError, ErrorCodes, type ErrorCode } from '../errors.js';
import { native } from '../util/native.js';
import { criuErrorLines } from './log.js';
import { openStderrFile, takeStderrFile } from './stderr-file.js';
import { decodeResponse, encodeRequest, ReqType, type CriuReq, type CriuResp, type CriuVersion } from './schema.js';

/** A NOTIFY callback: return false (or throw) to make CRIU abort the operation. */
export type NotifyHandler = (script: string, pid: number | undefined) => void | boolean | Promise<void | boolean>;

export interface SessionOptions {
  criuPath: string;
  /**
   * Start criu outside our process tree (double fork). Needed when this process
   * dumps itself: CRIU refuses to dump a tree that contains criu.
   */
  outsideTree?: boolean;
  /** Our fds to hand to criu as its fds 4, 5, … (for `inheritFd`). */
  passFds?: number[];
  /**
   * With `outsideTree`: once criu has exited with success, `bytes` are written to
   * `fd` by the shell that started it (criu itself does not get `fd`). For a
   * process that dumps itself and stays frozen (leave-stopped): it cannot report
   * the dump, so this does. `fd` is taken over: closed here once handed on.
   */
  onSuccess?: { fd: number; bytes: Uint8Array };
}

/** `bytes` as a printf(1) format of octal escapes only (nothing in it is a directive). */
function printfOctal(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
}

export class CriuSession {
  private closed = false;
  private constructor(
    private readonly fd: number,
    private readonly child: ChildProcess | undefined,
    private readonly stderr: { text: string; file?: number },
  ) {}

  static open(options: SessionOptions): CriuSession {
    const n = native();
    const [ours, theirs] = n.seqpacketPair();
    // Its stderr into a file (read after a failure), else (no logs directory) a pipe.
    const stderrFile = options.outsideTree ? undefined : openStderrFile();
    const stdio: (number | 'ignore' | 'pipe')[] = ['ignore', 'ignore', options.outsideTree ? 'ignore' : (stderrFile ?? 'pipe'), theirs];
    const done = options.outsideTree ? options.onSuccess : undefined;
    if (done && options.passFds?.length) throw new CkptError(ErrorCodes.INTERNAL, 'onSuccess and passFds together');
    if (done) stdio.push(done.fd);
    for (const fd of options.passFds ?? []) stdio.push(fd);
    const stderr: { text: string; file?: number } = { text: '', file: stderrFile };
    let child: ChildProcess | undefined;
    try {
      if (options.outsideTree) {
        // sh starts criu in the background and exits at once: criu is re-parented
        // away from us, so it is not part of the tree it dumps.
        // With onSuccess, a subshell (also re-parented away) waits for criu and writes the bytes.
        const script = done
          ? '( "$0" "$@" swrk 3 4>&- </dev/null >/dev/null 2>&1 && { exec 3>&-; printf "$DONE_BYTES" >&4; } ) & exit 0'
          : '"$0" "$@" swrk 3 </dev/null >/dev/null 2>&1 & exit 0';
        const sh = spawn('/bin/sh', ['-c', script, options.criuPath, ...unprivilegedArgs()], {
          stdio,
          detached: true,
          ...(done ? { env: { ...process.env, DONE_BYTES: printfOctal(done.bytes) } } : {}),
        });
        sh.on('error', () => {});
      } else {
        child = spawn(options.criuPath, [...unprivilegedArgs(), 'swrk', '3'], { stdio, detached: true });
        child.on('error', () => {});
        child.stderr?.setEncoding('utf8').on('data', (d: string) => {
          if (stderr.text.length < 8192) stderr.text += d;
        });
      }
    } catch (err) {
      if (stderrFile !== undefined) closeSync(stderrFile);
      throw err;
    } finally {
      n.close(theirs);
      // Ours must be closed before the dump: the connection it leads to is not the dumped process's.
      if (options.onSuccess) n.close(options.onSuccess.fd);
    }
    return new CriuSession(ours, child, stderr);
  }

  /**
   * Sends one request and returns CRIU's final response, answering NOTIFY messages
   * on the way. Resolves `null` when CRIU closed the connection without answering
   * (expected only for a self-dump that kills the caller).
   */
  async call(req: CriuReq, onNotify?: NotifyHandler): Promise<CriuResp | null> {
    if (this.closed) throw new CkptError(ErrorCodes.CRIU_PROTOCOL, 'CRIU session already closed');
    const n = native();
    n.send(this.fd, encodeRequest(req));
    for (;;) {
      const raw = await n.recv(this.fd);
      if (raw === null) return null;
      let resp: CriuResp;
      try {
        resp = decodeResponse(raw);
      } catch (cause) {
        throw new CkptError(ErrorCodes.CRIU_PROTOCOL, 'CRIU sent a message ckpt cannot read', { cause });
      }
      if (resp.type !== ReqType.NOTIFY) return resp;
      let ok = true;
      try {
        ok = (await onNotify?.(resp.notify?.script ?? '', resp.notify?.pid)) !== false;
      } catch {
        ok = false;
      }
      n.send(this.fd, encodeRequest({ type: ReqType.NOTIFY, notifySuccess: ok }));
    }
  }

  /** What criu wrote to stderr (before its log file was open). */
  get stderrText(): string {
    const { file } = this.stderr;
    if (file !== undefined) {
      this.stderr.file = undefined;
      this.stderr.text = takeStderrFile(file);
    }
    return this.stderr.text.trim();
  }

  /** The criu process's pid (undefined for one started outside our tree). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Waits for the criu process to exit (no-op for one started outside our tree). */
  async exited(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Its stderr as of now: kept for stderrText, the file closed.
    void this.stderrText;
    const n = native();
    try {
      n.shutdown(this.fd);
    } catch {
      // already disconnected
    }
    n.close(this.fd);
  }
}

/** Runs one request in its own session and closes it. */
export async function criuCall(
  criuPath: string,
  req: CriuReq,
  options: { onNotify?: NotifyHandler; passFds?: number[]; outsideTree?: boolean } = {},
): Promise<{ resp: CriuResp | null; stderr: string }> {
  const session = CriuSession.open({ criuPath, passFds: options.passFds, outsideTree: options.outsideTree });
  try {
    const resp = await session.call(req, options.onNotify);
    return { resp, stderr: session.stderrText };
  } finally {
    session.close();
    await session.exited();
  }
}

/** Turns an unsuccessful response into a CriuError carrying CRIU's own error lines. */
export function criuFailure(
  what: string,
  resp: CriuResp | null,
  logPath: string | undefined,
  stderr = '',
  code: ErrorCode = ErrorCodes.CRIU_FAILED,
): CriuError {
  const lines = logPath ? criuErrorLines(logPath) : [];
  const reason =
    lines[0] ??
    (resp?.crErrmsg && !/RLIMIT_NOFILE/.test(resp.crErrmsg) ? resp.crErrmsg : undefined) ??
    (stderr.split('\n').find((l) => l.trim()) || (resp ? 'no reason given' : 'criu exited without answering'));
  return new CriuError(code, `${what} failed: ${reason}`, {
    logPath,
    criuErrors: lines,
    // Name the log only where there is one (a restore that never started writes none).
    hint: logPath && existsSync(logPath) ? `CRIU's log: ${logPath}` : undefined,
    details: { crErrno: resp?.crErrno },
  });
}

export async function criuRpcVersion(criuPath: string): Promise<CriuVersion> {
  const { resp, stderr } = await criuCall(criuPath, { type: ReqType.VERSION });
  if (!resp?.success || !resp.version) throw criuFailure('criu version', resp, undefined, stderr, ErrorCodes.CRIU_PROTOCOL);
  return resp.version;
}

/** CRIU's own check of the kernel, through RPC (like `criu check`). */
export async function criuRpcCheck(criuPath: string): Promise<boolean> {
  const { resp, stderr } = await criuCall(criuPath, { type: ReqType.CHECK });
  if (!resp) throw criuFailure('criu check', resp, undefined, stderr, ErrorCodes.CRIU_PROTOCOL);
  return resp.success;
}

export async function criuFeatures(criuPath: string): Promise<NonNullable<CriuResp['features']>> {
  // Ask for every feature we know; CRIU answers which it has.
  const { resp, stderr } = await criuCall(criuPath, {
    type: ReqType.FEATURE_CHECK,
    features: { memTrack: true, lazyPages: true, pidfdStore: true },
  });
  if (!resp) throw criuFailure('criu feature check', resp, undefined, stderr, ErrorCodes.CRIU_PROTOCOL);
  return resp.features ?? {};
}
