// The store of an isolated job across nodes: one ordinary store per node (STORE/HOST)
// and nodes.json, written last, naming each node's snapshot (HOST/SEQ) — head first.
// nodes.json is input like any snapshot file: checked before anything runs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';
import { readAccepted } from '../util/dirfd.js';
import { writeFileAtomic } from '../util/fsx.js';
import { isNodeName } from './nodes-slurm.js';

/** The file of a store across nodes that names each node's snapshot (written last). */
export const NODES_FILE = 'nodes.json';
export const FORMAT = 'ckpt-isolated-nodes/1';
/** More than any real job's list of nodes. */
const MAX_NODES_BYTES = 1 << 20;

export interface NodesFile {
  format: string;
  name: string;
  /** Host first: the head (mpirun's tree); snapshot is `HOST/SEQ` relative to the store. */
  nodes: { host: string; name: string; snapshot: string }[];
}

/** Is `path` a store of a job across nodes? */
export const isNodesStore = (path: string): boolean => existsSync(join(path, NODES_FILE));

/** nodes.json, checked: it is input like any snapshot file. */
export function readNodesFile(store: string): NodesFile {
  let f: NodesFile;
  const path = join(store, NODES_FILE);
  try {
    // Not through a link, never blocked on a FIFO, never endless (a link to /dev/zero): a small regular file of ours or root's.
    const me = process.geteuid?.() ?? 0;
    const text = readAccepted(path, (st) => st.isFile() && st.size <= MAX_NODES_BYTES && (st.uid === me || st.uid === 0) && (st.mode & 0o022) === 0);
    if (text === undefined) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${path} is not a private regular file of yours or root's (at most ${MAX_NODES_BYTES} bytes)`);
    f = JSON.parse(text) as NodesFile;
  } catch (err) {
    if (err instanceof CkptError) throw err;
    throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${join(store, NODES_FILE)} is not readable JSON`, { cause: err });
  }
  const ok =
    f?.format === FORMAT &&
    Array.isArray(f.nodes) &&
    f.nodes.length > 0 &&
    f.nodes.every((n) => isNodeName(n?.host) && typeof n.name === 'string' && typeof n.snapshot === 'string' && n.snapshot.startsWith(`${n.host}/`) && /^\d{6}$/.test(n.snapshot.slice(n.host.length + 1))) &&
    new Set(f.nodes.map((n) => n.host)).size === f.nodes.length;
  if (!ok) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `${join(store, NODES_FILE)} is not a ${FORMAT} file`);
  return f;
}

/** Names this checkpoint's snapshots: from now on the one a restart takes. */
export function writeNodesFile(store: string, name: string, nodes: NodesFile['nodes']): void {
  const file: NodesFile = { format: FORMAT, name, nodes };
  writeFileAtomic(join(store, NODES_FILE), `${JSON.stringify(file, null, 2)}\n`);
}
