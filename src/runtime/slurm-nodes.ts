// What the coordinator asks of all its node agents at once: that they see the
// job's store (shared storage, checked before anything is started), and that they
// restore their ranks of a criu snapshot, in parallel, each on its own node.
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError, ErrorCodes, UsageError } from '../errors.js';
import { openDir, type JobSnapshot } from '../store/store.js';
import { assertWritableStore } from '../store/trust.js';
import { mkdirPrivate } from '../util/fsx.js';
import { probeReply, stageCopyReply } from '../wire/agent-messages.js';
import type { FileEntry } from '../store/checksum.js';
import type { StageItem } from './stage-copy.js';
import { parse } from '../wire/validate.js';
import type { NodeAgentLink } from './node-agent-link.js';
import type { StarterRestoreContext } from './starter.js';

/** How long a node's restore of its ranks may take (ms). */
const RESTORE_MS = 600_000;

/**
 * Writes a token into the store and asks every agent to read it back: a node that
 * does not see it (a node-local directory of the same name, or none) fails the
 * job's start with STORE_NOT_SHARED — not its first checkpoint, half written.
 */
export async function checkStoreShared(store: string, jobId: string, agents: NodeAgentLink[], stage?: string): Promise<void> {
  // As any store is taken (store/write.ts beginSnapshot): created private if missing, and
  // written only once it is ours and closed to others — through its descriptor, never by
  // a path another user could redirect. The agents read it back by path: that is the test.
  if (!existsSync(store)) mkdirPrivate(store);
  const dir = openDir(store, 'the snapshot store', ErrorCodes.SNAPSHOT_PATH);
  const name = `.ckpt-shared-${jobId}`;
  try {
    assertWritableStore(dir.stat, store);
    const token = randomBytes(16).toString('hex');
    // O_EXCL: never written through something planted under the name.
    writeFileSync(dir.at(name), token, { flag: 'wx', mode: 0o600 });
    try {
      await probeAll(join(store, name), token, store, agents, stage);
    } finally {
      rmSync(dir.at(name), { force: true });
    }
  } finally {
    dir.close();
  }
}

async function probeAll(path: string, token: string, store: string, agents: NodeAgentLink[], stage?: string): Promise<void> {
  const body = { path, token, ...(stage !== undefined ? { stage } : {}) };
  const replies = await Promise.all(
    agents.map(async (a) => ({ a, r: parse(probeReply, await a.request('probe-store', body, 30_000, `node ${a.node} to look at the store`), `node ${a.node}'s store probe`) })),
  );
  // --stage must be a usable directory on every node (one line, a usage error).
  const unstaged = replies.filter(({ r }) => r.stageProblem !== undefined);
  if (unstaged.length) throw new UsageError(`--stage: ${unstaged.map(({ a, r }) => `node ${a.node}: ${r.stageProblem}`).join('; ')}`);
  const blind = replies.filter(({ r }) => r.seen !== 'yes');
  if (blind.length) {
    throw new CkptError(
      ErrorCodes.STORE_NOT_SHARED,
      `the snapshot store ${store} is not shared storage: ${blind.map(({ a, r }) => `node ${a.node} does not see it${r.message ? ` (${r.message})` : ''}`).join('; ')}`,
      { hint: 'give --dir a directory every node mounts (a cluster file system)', details: { store, nodes: blind.map(({ a }) => a.node) } },
    );
  }
}

/** Each agent restores its ranks (placement) of `snapshot`; every node settles before a failure is reported. */
export async function restoreOnNodes(snapshot: JobSnapshot, ctx: StarterRestoreContext, agents: NodeAgentLink[], placement: number[]): Promise<void> {
  const byNode = agents.map((_, i) => placement.flatMap((n, r) => (n === i ? [r] : [])));
  const settled = await Promise.allSettled(
    agents.map((a, i) =>
      byNode[i]!.length ? a.request('restore', { snapshot: snapshot.dir, ranks: byNode[i], rejoin: ctx.rejoin }, RESTORE_MS, `node ${a.node} to restore ranks ${byNode[i]!.join(', ')}`) : undefined,
    ),
  );
  const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [`node ${agents[i]!.node}: ${(s.reason as Error).message}`] : []));
  if (failed.length) throw new CkptError(ErrorCodes.CRIU_FAILED, `restoring the ranks failed: ${failed.join('; ')}`);
}

/** --stage: each agent copies (or with `discard` removes) its node's staged ranks; every node settles before a failure is reported. */
export async function stageCopyOnNodes(items: StageItem[], discard: boolean, agents: NodeAgentLink[], placement: number[], timeoutMs: number, stage: string): Promise<{ rank: number; files: FileEntry[] }[]> {
  const byNode = agents.map((_, i) => items.filter((it) => placement[it.rank] === i));
  const settled = await Promise.allSettled(
    agents.map(async (a, i) => {
      if (!byNode[i]!.length) return [];
      const what = `node ${a.node} to copy the staged images of ranks ${byNode[i]!.map((it) => it.rank).join(', ')}`;
      return parse(stageCopyReply, await a.request('stage-copy', { items: byNode[i], stage, ...(discard ? { discard } : {}) }, timeoutMs, what), `node ${a.node}'s stage-copy reply`).copied;
    }),
  );
  // A refused request's error names its node already.
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).message] : []));
  if (failed.length) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, failed.join('; '));
  return settled.flatMap((s) => (s as PromiseFulfilledResult<{ rank: number; files: FileEntry[] }[]>).value);
}
