// Frames arriving from the peers: counted per source (the drain step of a
// checkpoint compares the counts, or waits for each peer's marker) and handed on in
// each peer's send order.
import type { Socket } from 'node:net';
import { CkptError, ErrorCodes } from '../../errors.js';
import { decodeControl, FrameKind, type Frame, type FrameDecoder } from '../../wire/frame.js';
import type { OnRead } from '../../wire/connector.js';
import type { PeerNetworkOptions } from './options.js';
import { parse } from '../../wire/validate.js';
import { drainMarker } from '../../wire/messages.js';

export class Inbound {
  /** Frames read from each peer (see Outbox.written). */
  readonly read: number[];
  /** The newest drain marker from each peer: its checkpoint, and whether it takes no part (abort). */
  readonly markers: ({ id: number; abort: boolean } | undefined)[];

  /** `onRead`: called after every frame read (the drain step watches the counts). */
  constructor(
    private readonly o: PeerNetworkOptions,
    private readonly onRead: () => void,
  ) {
    this.read = new Array(o.size).fill(0);
    this.markers = new Array(o.size).fill(undefined);
  }

  /** A data frame from `source`, in its send order. */
  arrived(source: number, frame: Frame): void {
    if (frame.kind === FrameKind.CONTROL) {
      // After the hello a control message on a link is a drain marker (not a message:
      // not counted) or a refusal of the link.
      const m = decodeControl(frame.payload);
      if (m.type === 'marker') {
        const marker = parse(drainMarker, m, `rank ${source}'s drain marker`);
        this.markers[source] = { id: marker.id, abort: marker.abort === true };
        this.onRead();
        return;
      }
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
