// Frames arriving from the peers: counted per source (the drain step of a
// checkpoint compares the counts) and handed on in each peer's send order.
import type { Socket } from 'node:net';
import { CkptError, ErrorCodes } from '../../errors.js';
import { decodeControl, FrameKind, type Frame, type FrameDecoder } from '../../wire/frame.js';
import type { OnRead } from '../../wire/connector.js';
import type { PeerNetworkOptions } from './options.js';

export class Inbound {
  /** Frames read from each peer (see Outbox.written). */
  readonly read: number[];

  /** `onRead`: called after every frame read (the drain step watches the counts). */
  constructor(
    private readonly o: PeerNetworkOptions,
    private readonly onRead: () => void,
  ) {
    this.read = new Array(o.size).fill(0);
  }

  /** A data frame from `source`, in its send order. */
  arrived(source: number, frame: Frame): void {
    if (frame.kind === FrameKind.CONTROL) {
      // After the hello the only control message on a link is a refusal of it.
      const m = decodeControl(frame.payload);
      if (m.type !== 'error') throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${source} sent an unexpected '${m.type}' on a peer link`);
      throw new CkptError(
        Object.values(ErrorCodes).includes(m.code as never) ? (m.code as CkptError['code']) : ErrorCodes.OOB_PROTOCOL,
        `rank ${source} refused our connection: ${String(m.message ?? m.type)}`,
      );
    }
    this.read[source]!++;
    this.o.onFrame(source, frame);
    this.onRead();
  }

  /** A bad frame (or a refusal) from `peer`: the communicator is unusable. */
  badFrame(peer: number, err: unknown, socket: Socket): void {
    const e = err as CkptError;
    this.o.onFatal(new CkptError(e.code ?? ErrorCodes.OOB_PROTOCOL, e.message.startsWith('rank ') ? e.message : `bad frame from rank ${peer}: ${e.message}`));
    socket.destroy();
  }
}

/** Reads a socket with `onread` into `decoder`; a frame it cannot take goes to `onError` and stops the reading. */
export function readInto(decoder: FrameDecoder, onError: (err: unknown) => void): OnRead {
  return {
    buffer: () => decoder.readBuffer(),
    callback: (n: number) => {
      try {
        decoder.commitRead(n);
      } catch (err) {
        onError(err);
        return false;
      }
      return true;
    },
  };
}
