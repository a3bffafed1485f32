// CRIU options shared by dump and restore: what a dump records, the restore must repeat.
import { NetworkLock, type CriuOpts } from '../../criu/schema.js';
import { envNumber } from '../../config.js';
import { CkptError, ErrorCodes } from '../../errors.js';
import type { ProcessRecord } from '../../store/manifest.js';
import { holdsTcpSockets } from '../../util/procfs.js';
import type { NetworkLockName } from '../../store/manifest.js';

export const IMAGES_DIR = 'images';
export const DUMP_LOG = 'dump.log';
export const RESTORE_LOG = 'restore.log';

/** CRIU's log level: 3 (info) keeps logs small yet explains failures; CKPT_CRIU_LOG_LEVEL overrides. */
export function criuLogLevel(): number {
  return envNumber('CKPT_CRIU_LOG_LEVEL');
}

/** What CRIU's options are made of: a process record, or a job rank's lean one (crs/criu/job-rank.ts). */
export type DumpedProcess = Pick<ProcessRecord, 'stdio' | 'shellJob' | 'tcpEstablished' | 'networkLock'>;

/** Options both dump and restore must agree on, derived from the recorded process. */
export function sharedOptions(record: DumpedProcess): CriuOpts {
  return {
    shellJob: record.shellJob ?? false,
    tcpEstablished: record.tcpEstablished ?? false,
    fileLocks: true,
    // No iptables on these machines: nftables locks the network during dump/restore
    // — unless the tree had no TCP socket, which needs no lock (see networkFacts).
    networkLock: networkLockMethod(record.networkLock),
    logLevel: criuLogLevel(),
  };
}

const socketIno = (target: string | null | undefined) => /^socket:\[(\d+)\]$/.exec(target ?? '')?.[1];

/**
 * Unix sockets on stdio lead outside the tree (Node's child stdio 'pipe' is a
 * socketpair), as does a job rank's coordinator connection kept across its dump
 * (`kept`, a unix socket): CRIU dumps them only when told they are external; the
 * restore hands in fresh ones through inherit-fd. Every socket on stdio is named,
 * unlisted: /proc/net/unix is read a page at a time and a socket closed meanwhile can
 * hide another from it (a rank's dump once failed so, "Can't dump half of stream unix
 * connection", 1 in ~400 at 16 ranks), and CRIU consults `unix[ino]` for unix sockets only.
 */
function externalUnix(stdio: (string | null)[], kept: string | undefined): CriuOpts {
  const inodes = new Set([...stdio, kept].map(socketIno).filter((ino): ino is string => ino !== undefined));
  if (inodes.size === 0) return {};
  return { extUnixSk: true, external: [...inodes].map((ino) => `unix[${ino}]`) };
}

/**
 * What the network needs around a dump, decided right before it: a tree holding a
 * TCP socket gets the nftables lock and its connections dumped (tcp_established);
 * one without gets neither — the lock alone costs ~350 ms here, and several dumps
 * at once wait on each other for it. A connection opened in the moment between
 * this look and the freeze then makes CRIU refuse the dump (no tcp_established)
 * instead of dumping it unprotected.
 */
export function networkFacts(pids: number[]): Pick<ProcessRecord, 'networkLock' | 'tcpEstablished'> {
  return holdsTcpSockets(pids) ? { networkLock: 'nftables', tcpEstablished: true } : { networkLock: 'skip', tcpEstablished: false };
}

/** CRIU's lock method for a recorded choice (older snapshots recorded none: nftables). */
export function networkLockMethod(name: NetworkLockName | undefined): NetworkLock {
  return name === 'skip' ? NetworkLock.SKIP : NetworkLock.NFTABLES;
}

/** `kept`: a job rank's unix connection to its coordinator, open across the dump (`socket:[ino]`). */
export function dumpOptions(record: DumpedProcess, imagesDir: string, kept?: string): CriuOpts {
  return { ...sharedOptions(record), ...externalUnix(record.stdio, kept), imagesDir, logFile: DUMP_LOG };
}

/** A snapshot made by CRIU holds its images: refuse one that lists none before CRIU is started. */
export function assertHasImages(files: { path: string }[], dir: string, imagesDir = IMAGES_DIR): void {
  if (!files.some((f) => f.path === `${imagesDir}/inventory.img`)) {
    throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${dir} holds no CRIU images (${imagesDir}/inventory.img is not among its files)`, {
      hint: 'the snapshot is damaged or not a CRIU snapshot: use another one',
    });
  }
}
