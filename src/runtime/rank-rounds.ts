// One request to many ranks at once (Coordinator.requestAll): ranks relayed by a node
// agent get theirs through it, one message per node each way (the coordinator's work
// per round grows with nodes); the others directly.
import type { ControlMessage } from '../wire/frame.js';
import type { RelaySink } from './relayed-stream.js';

/** What a round needs of the coordinator. */
export interface RoundHost {
  /** The agent that relays this rank's connection, if one does. */
  relayOf(rank: number): RelaySink | undefined;
  request(rank: number, op: string, timeoutMs: number, body: Record<string, unknown>): Promise<ControlMessage>;
  /** self: what the rank had written once it reports standing at that safe point. */
  arrival(rank: number, seq: number, safePoint: number, timeoutMs: number): Promise<number[]>;
}

export interface Round {
  ranks: readonly number[];
  op: string;
  body: (rank: number) => Record<string, unknown>;
  timeoutMs: number;
  /** A rank for which this names a report (self's reach) is asked nothing: its `arrived` report answers ({ written }). */
  arrival: (rank: number) => { seq: number; safePoint: number } | undefined;
  /** Every rank's outcome, its reply or its error; otherwise the first failure fails the round. */
  settled: boolean;
}

export async function roundToRanks(host: RoundHost, o: Round): Promise<(ControlMessage | Error)[]> {
  const byAgent = new Map<RelaySink, number[]>();
  const direct: number[] = [];
  for (const r of o.ranks) {
    const via = host.relayOf(r);
    if (via) byAgent.set(via, [...(byAgent.get(via) ?? []), r]);
    else direct.push(r);
  }
  const out = new Map<number, ControlMessage | Error>();
  const keep = (r: number, x: ControlMessage | Error) => {
    if (x instanceof Error && !o.settled) throw x;
    out.set(r, x);
  };
  const settle = <T>(p: Promise<T>): Promise<T | Error> => (o.settled ? p.catch((err: Error) => err) : p);
  await Promise.all([
    ...direct.map(async (r) => {
      const a = o.arrival(r);
      const reply = a ? host.arrival(r, a.seq, a.safePoint, o.timeoutMs).then((written): ControlMessage => ({ type: 'reply', ok: true, written })) : host.request(r, o.op, o.timeoutMs, o.body(r));
      keep(r, await settle(reply));
    }),
    ...[...byAgent].map(async ([via, rs]) => {
      const items = rs.map((r) => {
        const a = o.arrival(r);
        return a ? { rank: r, body: {}, arrival: a } : { rank: r, body: o.body(r) };
      });
      const replies = await settle(via.fanout(o.op, items, o.timeoutMs));
      rs.forEach((r, i) => keep(r, replies instanceof Error ? replies : (replies[i] as ControlMessage | Error)));
    }),
  ]);
  return o.ranks.map((r) => out.get(r)!);
}
