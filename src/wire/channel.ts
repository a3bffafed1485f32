// The out-of-band channel: framed control messages over a unix socket or TCP.
// Addresses are strings so they travel in environment variables and JSON:
// `unix:/run/dir/coord.sock` or `tcp:127.0.0.1:4567` (`tcp:[::1]:4567`).
import { EventEmitter } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { envNumber } from '../config.js';
import {
  decodeControl,
  encodeControl,
  FrameDecoder,
  FrameKind,
  MAX_CONTROL_BYTES,
  type ControlMessage,
  type Frame,
} from './frame.js';

/** Version of the OOB protocol spoken inside control frames (sent in every hello). 2: hellos prove the secret (wire/hello-proof.ts), never carry it. */
export const OOB_PROTOCOL_VERSION = 2;

/**
 * How long a new connection to any ckpt listener (the coordinator's, a rank's peer
 * listener) has to present a valid hello before it is dropped. Shared by both, so
 * a stranger costs the same everywhere; `CKPT_HELLO_TIMEOUT_MS` overrides it.
 */
export const HELLO_TIMEOUT_MS = 10_000;

/**
 * Connections a listener holds that have not yet said a valid hello. Beyond this
 * the one waiting longest is closed: idle strangers cannot fill a job's file
 * descriptors, nor keep a member out (a member's hello arrives with its connection,
 * so it is never long among them; a stranger holding the cap is the oldest).
 */
export const MAX_UNAUTHENTICATED = 64;

/** How many nonces of the hellos it took a listener remembers: a long job's hellos, in 4.5 MB at most (measured). */
export const MAX_REMEMBERED_HELLOS = 1 << 16;

/**
 * A node agent's control frames: one reply carries all its ranks' (self: each up to
 * CKPT_SELF_INLINE_BYTES of state, base64) and relays a rank's frames base64'd —
 * past 1 MiB with 13 ranks of 64 KiB on a node. Bounded all the same.
 */
export const MAX_AGENT_CONTROL_BYTES = 256 << 20;

/**
 * Keeps a listener's connections that have not said a valid hello yet, and closes the
 * one waiting longest when a new one comes and `max` are already waiting.
 */
export class HelloGate {
  /** How to close each waiting connection, in the order they came (a Set keeps it). */
  private readonly waiting = new Set<() => void>();
  /** The nonces of the hellos it took (their proofs checked), oldest first. */
  private readonly taken = new Set<string>();
  constructor(
    private readonly max = MAX_UNAUTHENTICATED,
    private readonly remembered = MAX_REMEMBERED_HELLOS,
  ) {}

  /**
   * Takes a proven hello's nonce: false if one with it was taken before — a hello seen
   * on the wire and replayed to this listener, which would otherwise pass (its proof
   * names this address). Only proven hellos come here, so strangers cannot push the
   * oldest out; past `remembered` of them the oldest is forgotten.
   */
  fresh(nonce: string): boolean {
    if (this.taken.has(nonce)) return false;
    if (this.taken.size >= this.remembered) this.taken.delete(this.taken.values().next().value!);
    this.taken.add(nonce);
    return true;
  }

  /**
   * Admits a connection, given how to close it (the socket it is read through: a
   * duplicate of the accepted one may be); returns what to call once it said hello or
   * closed (once is enough).
   */
  admit(close: () => void): () => void {
    if (this.waiting.size >= this.max) {
      const oldest = this.waiting.values().next().value!;
      this.waiting.delete(oldest);
      oldest();
    }
    const entry = () => close();
    this.waiting.add(entry);
    return () => void this.waiting.delete(entry);
  }

  reset(): void {
    this.waiting.clear();
  }
}

/** The hello timeout in force: `CKPT_HELLO_TIMEOUT_MS` (a positive whole number of ms) or HELLO_TIMEOUT_MS. */
export function helloTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  return envNumber('CKPT_HELLO_TIMEOUT_MS', env);
}

export type Transport = 'unix' | 'tcp';
export type Address = { transport: 'unix'; path: string } | { transport: 'tcp'; host: string; port: number };

export function formatAddress(a: Address): string {
  if (a.transport === 'unix') return `unix:${a.path}`;
  return `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

export function parseAddress(text: string): Address {
  if (text.startsWith('unix:') && text.length > 5) return { transport: 'unix', path: text.slice(5) };
  const m = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (m && Number(m[3]) < 65536) return { transport: 'tcp', host: (m[1] ?? m[2])!, port: Number(m[3]) };
  throw new CkptError(ErrorCodes.USAGE, `not a ckpt address: '${text}' (want unix:/path or tcp:host:port)`);
}

/** A fresh per-job secret: 32 random bytes, hex. */
export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

/** Constant-time comparison of secrets of any length (both are hashed first): protocol 1's hellos, which carried the secret. */
export function secretsEqual(a: unknown, b: string): boolean {
  if (typeof a !== 'string') return false;
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** Listens on an address; a tcp port 0 is replaced by the port the kernel chose. */
export async function listenOn(
  address: Address,
  onConnection: (socket: Socket) => void,
  options: { pauseOnConnect?: boolean } = {},
): Promise<{ server: Server; address: Address }> {
  const server = createServer({ noDelay: true, pauseOnConnect: options.pauseOnConnect === true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (address.transport === 'unix') server.listen({ path: address.path, backlog: 1024 }, done);
    else server.listen({ host: address.host, port: address.port, backlog: 1024 }, done);
  }).catch((err: unknown) => {
    throw new CkptError(ErrorCodes.OOB_UNREACHABLE, `cannot listen on ${formatAddress(address)}: ${(err as Error).message}`, { cause: err });
  });
  if (address.transport === 'tcp') {
    const bound = server.address();
    if (bound && typeof bound === 'object') return { server, address: { ...address, port: bound.port } };
  }
  return { server, address };
}

/**
 * Connects, retrying refused/absent endpoints until `timeoutMs` (the listener may
 * be a moment behind us); fails with OOB_UNREACHABLE naming the address.
 */
export async function connectTo(address: Address, timeoutMs: number, what = 'the coordinator'): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      return await connectOnce(address, Math.max(1, deadline - Date.now()));
    } catch (err) {
      const code = errnoCode(err);
      const retryable = code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EAGAIN';
      if (!retryable || Date.now() + delay >= deadline) {
        throw new CkptError(
          ErrorCodes.OOB_UNREACHABLE,
          `cannot reach ${what} at ${formatAddress(address)}: ${code ?? (err as Error).message}`,
          { cause: err, details: { address: formatAddress(address) } },
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
  }
}

function connectOnce(address: Address, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      address.transport === 'unix'
        ? createConnection({ path: address.path })
        : createConnection({ host: address.host, port: address.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export interface ChannelEvents {
  message: [ControlMessage];
  /** Non-control frames (only peer connections carry them). */
  frame: [Frame];
  /** The connection ended; `error` says why when it was not a clean close. */
  close: [CkptError | undefined];
}

/**
 * One framed connection. Inbound frames are decoded and emitted; a malformed one
 * gets an `error` control message back and ends the connection.
 */
export class Channel extends EventEmitter<ChannelEvents> {
  readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private closed = false;
  private nextId = 1;
  private readonly backlog: ControlMessage[] = [];
  private readonly pending = new Map<number, { resolve: (m: ControlMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    socket: Socket,
    /** The decoder's limits, kept: a connection that proved itself may be allowed more (allowControl). */
    private readonly limits: { control: number; data: number } = { control: MAX_CONTROL_BYTES, data: 0 },
  ) {
    super();
    this.socket = socket;
    this.decoder = new FrameDecoder((frame) => this.onFrame(frame), limits);
    // A message that arrives while nobody listens (between next() and the owner's
    // 'message' handler) waits here instead of being lost.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message' && this.backlog.length) queueMicrotask(() => this.flushBacklog());
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.fail(err as CkptError);
      }
    });
    socket.on('error', (err) => this.finish(new CkptError(ErrorCodes.OOB_UNREACHABLE, `connection failed: ${errnoCode(err) ?? err.message}`, { cause: err })));
    socket.on('close', () => this.finish(undefined));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Control frames up to `bytes` from now on (a node agent, once its hello proved it one of the job's). */
  allowControl(bytes: number): void {
    this.limits.control = Math.max(this.limits.control, bytes);
  }

  send(message: ControlMessage): void {
    if (!this.closed) this.socket.write(encodeControl(message));
  }

  /** Sends and resolves once the bytes are with the kernel (before a deliberate destroy()). */
  sendFlushed(message: ControlMessage): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.socket.write(encodeControl(message), () => resolve()));
  }

  /** Sends a request with a fresh `id` and waits for the `reply` carrying it. */
  request(message: ControlMessage, timeoutMs: number, what: string): Promise<ControlMessage> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new CkptError(ErrorCodes.OOB_UNREACHABLE, `connection closed before ${what}`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CkptError(ErrorCodes.TIMEOUT, `timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ ...message, id });
    });
  }

  /** Waits for the next control message (optionally of one type), or fails on close/timeout. */
  next(timeoutMs: number, what: string): Promise<ControlMessage> {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.off('message', onMessage);
        this.off('close', onClose);
      };
      const onMessage = (m: ControlMessage) => {
        cleanup();
        resolve(m);
      };
      const onClose = (err: CkptError | undefined) => {
        cleanup();
        reject(err ?? new CkptError(ErrorCodes.OOB_UNREACHABLE, `connection closed while waiting for ${what}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new CkptError(ErrorCodes.TIMEOUT, `timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      if (this.closed) return onClose(undefined);
      this.on('message', onMessage);
      this.on('close', onClose);
    });
  }

  /** Reports a protocol/auth failure to the other side (with `extra`: a refusal's proof), then closes. */
  fail(err: CkptError, extra: Record<string, unknown> = {}): void {
    if (this.closed) return;
    this.send({ type: 'error', code: err.code, message: err.message, ...extra });
    this.socket.end();
    this.finish(err);
    // A peer that never reads must not keep the socket open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  close(): void {
    if (this.closed) return;
    this.socket.end();
    this.finish(undefined);
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.socket.destroy();
    this.finish(undefined);
  }

  private onFrame(frame: Frame): void {
    if (this.closed) return;
    if (frame.kind !== FrameKind.CONTROL) {
      this.emit('frame', frame);
      return;
    }
    const message = decodeControl(frame.payload);
    if (message.type === 'reply' && typeof message.id === 'number') {
      const waiter = this.pending.get(message.id);
      if (waiter) {
        this.pending.delete(message.id);
        clearTimeout(waiter.timer);
        waiter.resolve(message);
      }
      // A reply to a request that already timed out is late, not a protocol error.
      return;
    }
    if (this.listenerCount('message') === 0) this.backlog.push(message);
    else this.emit('message', message);
  }

  private flushBacklog(): void {
    while (this.backlog.length && this.listenerCount('message') > 0) this.emit('message', this.backlog.shift()!);
  }

  private finish(err: CkptError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, w] of this.pending) {
      clearTimeout(w.timer);
      w.reject(err ?? new CkptError(ErrorCodes.OOB_UNREACHABLE, 'connection closed before the reply'));
    }
    this.pending.clear();
    this.emit('close', err);
  }
}

/** Turns an `error` control message from the other side into a CkptError. */
export function remoteError(message: ControlMessage, fallback: string): CkptError {
  const code = Object.values(ErrorCodes).includes(message.code as never) ? (message.code as CkptError['code']) : ErrorCodes.OOB_PROTOCOL;
  return new CkptError(code, typeof message.message === 'string' ? message.message : fallback);
}
