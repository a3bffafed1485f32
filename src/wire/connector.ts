// How a rank (or a control client) listens and connects: one small interface with
// an implementation per transport (unix, tcp), so whoever listens or connects does
// not care which transport is behind it — as undici's buildConnector puts the socket
// behind a pluggable connect function.
// The connector also decides the address a rank hands out to its peers. That must be
// an address of the rank's own host (the rank may run on another host than its
// coordinator), and never a wildcard: see advertisedPeerHost().
import { createConnection, isIP, type Server, type Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { connectTo, formatAddress, listenOn, type Address, type Transport } from './channel.js';

/** Reading straight into the caller's buffers (net.connect's `onread`). */
export interface OnRead {
  buffer: () => Uint8Array;
  callback: (bytesRead: number) => boolean;
}

export interface Listening {
  server: Server;
  /** Where the server is bound (a tcp port 0 replaced by the kernel's choice). */
  bound: Address;
  /** Where others connect to it: `bound`, with a wildcard host replaced by a concrete one. */
  advertised: Address;
}

export interface Connector {
  readonly transport: Transport;
  /** Where to listen for connections to the endpoint `name` (a rank's peer listener: `r3`). */
  listenAddress(name: string): Promise<Address>;
  listen(address: Address, onConnection: (socket: Socket) => void, options?: { pauseOnConnect?: boolean }): Promise<Listening>;
  /** Opens one connection now (no retry); writes wait in the socket until it is up. */
  connect(address: Address, options?: { onread?: OnRead }): Socket;
  /** Connects, retrying while the listener is not up yet, until `timeoutMs`; fails with OOB_UNREACHABLE. */
  reach(address: Address, timeoutMs: number, what?: string): Promise<Socket>;
}

export interface ConnectorOptions {
  /** The coordinator's address: its host tells whether every rank runs on this host, its directory holds a job's unix sockets. */
  home?: Address;
  /** Where CKPT_PEER_HOST is read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** This host's address for peers, when nothing else names one (default: what os.hostname() resolves to). */
  resolveHost?: (family: 0 | 4) => Promise<string>;
}

/** The connector for `transport`. */
export function buildConnector(transport: Transport, options: ConnectorOptions = {}): Connector {
  return transport === 'unix' ? new UnixConnector(options) : new TcpConnector(options);
}

/** The connector of a job's member: the transport of its coordinator's address, which is also its home. */
export function connectorFor(home: Address, env?: NodeJS.ProcessEnv): Connector {
  return buildConnector(home.transport, { home, env });
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped), localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** An address that means "every interface" when bound. */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

function notMine(connector: Transport, address: Address): CkptError {
  return new CkptError(ErrorCodes.USAGE, `a ${connector} connector cannot use ${formatAddress(address)}`);
}

function connectSocket(address: Address, options: { onread?: OnRead }): Socket {
  const onread = options.onread ? { onread: options.onread } : {};
  return address.transport === 'unix'
    ? createConnection({ path: address.path, ...onread })
    : createConnection({ host: address.host, port: address.port, noDelay: true, ...onread });
}

/** Unix sockets: a job's endpoints live in its private 0700 directory, beside the coordinator's socket. */
class UnixConnector implements Connector {
  readonly transport = 'unix' as const;
  constructor(private readonly o: ConnectorOptions) {}

  async listenAddress(name: string): Promise<Address> {
    const home = this.o.home;
    if (home?.transport !== 'unix') throw new CkptError(ErrorCodes.USAGE, `a unix endpoint '${name}' needs the job's unix socket directory (the coordinator's address)`);
    return { transport: 'unix', path: join(dirname(home.path), `${name}.sock`) };
  }

  async listen(address: Address, onConnection: (socket: Socket) => void, options: { pauseOnConnect?: boolean } = {}): Promise<Listening> {
    if (address.transport !== 'unix') throw notMine('unix', address);
    const { server, address: bound } = await listenOn(address, onConnection, options);
    return { server, bound, advertised: bound };
  }

  connect(address: Address, options: { onread?: OnRead } = {}): Socket {
    if (address.transport !== 'unix') throw notMine('unix', address);
    return connectSocket(address, options);
  }

  reach(address: Address, timeoutMs: number, what?: string): Promise<Socket> {
    if (address.transport !== 'unix') return Promise.reject(notMine('unix', address));
    return connectTo(address, timeoutMs, what);
  }
}

/** CKPT_PEER_HOST, checked: a host name or an IP address (a wildcard means: listen on every interface). */
function configuredPeerHost(o: ConnectorOptions): string | undefined {
  // CKPT_PEER_HOST: the host a rank listens on and hands out to its peers (set by whoever starts the rank, e.g. a node agent).
  const v = (o.env ?? process.env).CKPT_PEER_HOST?.trim();
  if (!v) return undefined;
  if (isIP(v) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v)) {
    throw new CkptError(ErrorCodes.USAGE, `CKPT_PEER_HOST must be a host name or an IP address, not '${v}'`);
  }
  return v;
}

/** The coordinator's host, when it is on this host (a loopback address, or a wildcard, which as a destination means this host too). */
function localHome(o: ConnectorOptions): string | undefined {
  const home = o.home;
  if (home?.transport !== 'tcp') return undefined;
  return isLoopback(home.host) || isWildcard(home.host) ? home.host : undefined;
}

/**
 * The host a rank hands out to its peers, in order: CKPT_PEER_HOST; the
 * coordinator's host when it is a loopback address (every rank is then on this
 * host); else the address this machine's name resolves to. Never a wildcard:
 * `bound` is the wildcard being listened on, if any (its address family is kept).
 */
export async function advertisedPeerHost(o: ConnectorOptions, bound?: string): Promise<string> {
  const configured = configuredPeerHost(o);
  if (configured && !isWildcard(configured)) return configured;
  const home = localHome(o);
  const v4Only = bound === '0.0.0.0';
  if (home !== undefined) {
    if (isWildcard(home)) return v4Only || home === '0.0.0.0' ? '127.0.0.1' : '::1';
    return v4Only && isIP(home) === 6 ? '127.0.0.1' : home;
  }
  try {
    return await (o.resolveHost ?? resolveHostname)(v4Only ? 4 : 0);
  } catch (err) {
    throw new CkptError(
      ErrorCodes.OOB_UNREACHABLE,
      `cannot tell this host's address for the other ranks (${errnoCode(err) ?? (err as Error).message}); set CKPT_PEER_HOST`,
      { cause: err },
    );
  }
}

/** TCP: a rank listens on an ephemeral port of its own host's address. */
class TcpConnector implements Connector {
  readonly transport = 'tcp' as const;
  constructor(private readonly o: ConnectorOptions) {}

  async listenAddress(): Promise<Address> {
    // Listen where we are reached: CKPT_PEER_HOST (a wildcard: everywhere), the
    // coordinator's local host as today, else this host's own address.
    const host = configuredPeerHost(this.o) ?? localHome(this.o) ?? (await advertisedPeerHost(this.o));
    return { transport: 'tcp', host, port: 0 };
  }

  async listen(address: Address, onConnection: (socket: Socket) => void, options: { pauseOnConnect?: boolean } = {}): Promise<Listening> {
    if (address.transport !== 'tcp') throw notMine('tcp', address);
    const { server, address: bound } = await listenOn(address, onConnection, options);
    if (bound.transport !== 'tcp' || !isWildcard(bound.host)) return { server, bound, advertised: bound };
    try {
      return { server, bound, advertised: { ...bound, host: await advertisedPeerHost(this.o, bound.host) } };
    } catch (err) {
      server.close();
      throw err;
    }
  }

  connect(address: Address, options: { onread?: OnRead } = {}): Socket {
    if (address.transport !== 'tcp') throw notMine('tcp', address);
    return connectSocket(address, options);
  }

  reach(address: Address, timeoutMs: number, what?: string): Promise<Socket> {
    if (address.transport !== 'tcp') return Promise.reject(notMine('tcp', address));
    return connectTo(address, timeoutMs, what);
  }
}

/** The address this machine's name resolves to (IPv4 only for a socket bound to 0.0.0.0). */
async function resolveHostname(family: 0 | 4): Promise<string> {
  return (await lookup(hostname(), { family })).address;
}
