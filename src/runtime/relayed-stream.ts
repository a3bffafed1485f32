// A rank connection relayed by its node's agent, as the coordinator sees it: a
// duplex stream that admission takes like a socket (coordinator-admission.ts).
// What the coordinator writes — one whole frame per write — goes to the agent as
// one `relay` message; what the agent relays is pushed in as it comes.
import { Duplex } from 'node:stream';

/** One rank's part of a fan-out; with `arrival`, its own report answers (wire/agent-messages.ts). */
export interface FanoutItem {
  rank: number;
  body: Record<string, unknown>;
  arrival?: { seq: number; safePoint: number };
}

/** The agent that relays the stream. */
export interface RelaySink {
  send(message: Record<string, unknown>): void;
  /** One request to each of these ranks (its own streams), answered at once: each one's reply, or why it has none. */
  fanout(op: string, items: FanoutItem[], timeoutMs: number): Promise<(Record<string, unknown> | Error)[]>;
}

export class RelayedStream extends Duplex {
  private closedByAgent = false;

  constructor(
    readonly conn: number,
    /** The agent relaying it: fan-outs to this rank go through it. */
    readonly via: RelaySink,
  ) {
    super();
  }

  override _read(): void {
    // Data is pushed when the agent relays it.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.via.send({ type: 'relay', conn: this.conn, data: chunk.toString('base64') });
    done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.tellAgent();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.tellAgent();
    done(err);
  }

  /** The agent relayed bytes of this stream. */
  fromAgent(data: Buffer): void {
    this.push(data);
  }

  /** The rank's connection to its agent closed. */
  endedByAgent(): void {
    this.closedByAgent = true;
    this.push(null);
    this.destroy();
  }

  private tellAgent(): void {
    if (this.closedByAgent) return;
    this.closedByAgent = true;
    this.via.send({ type: 'relay-close', conn: this.conn });
  }
}
