// This host's address for the others of a job across nodes: what `--bind IFACE|ADDR`
// names (an interface's IPv4 address, or an address), else what the host's name
// resolves to — never a loopback address, which on another node is that node.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { CkptError, ErrorCodes } from '../errors.js';
import { isLoopback } from './connector.js';

/** The address `bind` names here: itself when it is an address, else the interface's (IPv4 first). */
export function bindAddress(bind: string): string {
  if (isIP(bind)) return bind;
  const addrs = networkInterfaces()[bind];
  const a = addrs?.find((x) => x.family === 'IPv4') ?? addrs?.[0];
  if (!a) throw new CkptError(ErrorCodes.USAGE, `--bind ${bind}: neither an address nor an interface of ${hostname()}`);
  return a.address;
}

/** The address other nodes reach this host at: `bind`'s, else the host name's (not loopback). */
export async function nodeAddress(bind?: string): Promise<string> {
  if (bind) return bindAddress(bind);
  let address: string;
  try {
    address = (await lookup(hostname(), { family: 4 })).address;
  } catch (err) {
    throw new CkptError(ErrorCodes.OOB_UNREACHABLE, `cannot resolve this host's name (${hostname()}) to an address the other nodes can reach`, {
      cause: err,
      hint: 'give --bind IFACE (the interface the nodes talk over)',
    });
  }
  if (isLoopback(address)) {
    throw new CkptError(ErrorCodes.OOB_UNREACHABLE, `this host's name (${hostname()}) resolves to ${address}, which the other nodes cannot reach`, {
      hint: 'give --bind IFACE (the interface the nodes talk over)',
    });
  }
  return address;
}
