// Control clients' requests to the coordinator (`ckpt ps`, `ckpt kill`, `ckpt
// checkpoint JOB`): the job's status, a checkpoint, a kill or a signal.
import { CkptError, ErrorCodes } from '../errors.js';
import type { Channel } from '../wire/channel.js';
import type { ControlMessage } from '../wire/frame.js';
import type { RankProgress } from './job-checkpoint.js';

export type CheckpointHandler = (request: {
  then?: string;
  store?: string;
  crs?: string;
  from: 'control' | 'rank';
  /** Each rank's bytes written so far (criu ranks): sent to the control client as `progress` messages. */
  onProgress?: (progress: RankProgress) => void;
  /** Aborted by an `abort-checkpoint` request with the same token. */
  signal?: AbortSignal;
  /** The reply, as soon as the snapshot is committed (before the ranks go on); the promise resolves to it as well. */
  onCommitted?: (reply: Record<string, unknown>) => void;
}) => Promise<Record<string, unknown>>;

export interface ControlHost {
  /** The job's status (filled in by the launcher). */
  status(): Record<string, unknown>;
  /** Where each rank listens for its peers (empty before the wire-up). */
  peers(): string[];
  readonly checkpointHandler: CheckpointHandler | undefined;
  kill(signal: NodeJS.Signals | undefined): void;
  /** One request/reply round with every node agent at once (a job across nodes); undefined without agents. */
  pingAgents?(): Promise<void> | undefined;
  /** One request/reply round with every rank at once, through their agents if any: what each round of a checkpoint costs at the least. */
  pingRanks?(): Promise<void>;
  /**
   * Checkpoints asked for by control clients that named a token, by token: an
   * interrupted `ckpt checkpoint JOB` aborts its own checkpoint (`abort-checkpoint`),
   * never another that started since.
   */
  readonly checkpointAborts: Map<string, AbortController>;
}

export function serveControl(channel: Channel, m: ControlMessage, host: ControlHost): void {
  if (m.type !== 'request') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `unexpected message '${m.type}' from a control client`);
  switch (m.op) {
    case 'status':
      // `peers`: where each rank listens for its peers (tcp: host:port), for the job's own user.
      channel.send({ type: 'reply', id: m.id, ok: true, status: { ...host.status(), peers: host.peers() } });
      return;
    case 'checkpoint': {
      if (!host.checkpointHandler) {
        channel.send({ type: 'reply', id: m.id, ok: false, message: 'this job cannot be checkpointed' });
        return;
      }
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const token = str(m.token);
      const abort = token && !host.checkpointAborts.has(token) ? new AbortController() : undefined;
      if (abort) host.checkpointAborts.set(token!, abort);
      // Progress only to a client that asked for it (a terminal): older clients see none.
      const onProgress = m.progress === true ? (p: RankProgress) => channel.send({ type: 'progress', id: m.id, ...p }) : undefined;
      // Answered once, at the commit (before the ranks go on), or at the end.
      let answered = false;
      const answer = (reply: ControlMessage) => {
        if (!answered) channel.send(reply);
        answered = true;
      };
      const onCommitted = (result: Record<string, unknown>) => answer({ type: 'reply', id: m.id, ok: true, ...result });
      host.checkpointHandler({ from: 'control', then: str(m.then), store: str(m.store), crs: str(m.crs), signal: abort?.signal, onProgress, onCommitted }).then(
        onCommitted,
        (err: Error) => answer({ type: 'reply', id: m.id, ok: false, message: err.message, code: (err as CkptError).code }),
      ).finally(() => {
        if (abort) host.checkpointAborts.delete(token!);
      });
      return;
    }
    case 'abort-checkpoint': {
      const abort = typeof m.token === 'string' ? host.checkpointAborts.get(m.token) : undefined;
      abort?.abort();
      channel.send({ type: 'reply', id: m.id, ok: true, aborted: abort !== undefined });
      return;
    }
    case 'kill': {
      const signal = typeof m.signal === 'string' ? (m.signal as NodeJS.Signals) : undefined;
      channel.send({ type: 'reply', id: m.id, ok: true });
      host.kill(signal);
      return;
    }
    case 'ping-agents':
    case 'ping-ranks': {
      // The bare cost of one round to the node agents, or through them to every rank
      // (bench/slurm.mjs measures checkpoints against them). `delayMs` (up to 60 s): the
      // round starts that long after the request, so that it runs, and its answer is
      // read, after an idle as long as a checkpoint's dumps (bench/idle.mjs).
      const asked = performance.now();
      const round = () => {
        const t0 = performance.now();
        const ping = m.op === 'ping-agents' ? host.pingAgents?.() : host.pingRanks?.();
        if (!ping) {
          channel.send({ type: 'reply', id: m.id, ok: false, message: m.op === 'ping-agents' ? 'this job has no node agents' : 'this job cannot be pinged' });
          return;
        }
        ping.then(
          () => channel.send({ type: 'reply', id: m.id, ok: true, ms: performance.now() - t0, ...(delayMs > 0 ? { waitedMs: t0 - asked } : {}) }),
          (err: Error) => channel.send({ type: 'reply', id: m.id, ok: false, message: err.message }),
        );
      };
      const delayMs = typeof m.delayMs === 'number' && m.delayMs > 0 ? Math.min(m.delayMs, 60_000) : 0;
      if (delayMs > 0) setTimeout(round, delayMs);
      else round();
      return;
    }
    default:
      channel.send({ type: 'reply', id: m.id, ok: false, message: `unknown operation '${String(m.op)}'` });
  }
}
