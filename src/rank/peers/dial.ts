// The higher rank of a pair connects to the lower one, says who it is (peer-hello
// with the job secret), and then talks both ways on that one connection.
import { encodeControl, FrameDecoder, MAX_CONTROL_BYTES } from '../../wire/frame.js';
import { OOB_PROTOCOL_VERSION, type Address } from '../../wire/channel.js';
import type { Connector } from '../../wire/connector.js';
import { readInto, type Inbound } from './inbound.js';
import type { LinkTable } from './links.js';
import type { PeerNetworkOptions } from './options.js';

export interface DialContext {
  o: PeerNetworkOptions;
  table: LinkTable;
  inbound: Inbound;
}

/** Connects to `peer` at `address` through `connector`; the link is usable at once (writes wait in the socket). */
export function dialPeer(ctx: DialContext, connector: Connector, peer: number, address: Address): void {
  const { o, table, inbound } = ctx;
  const decoder = new FrameDecoder(
    (frame) => inbound.arrived(peer, frame),
    { control: MAX_CONTROL_BYTES, data: o.maxMessageBytes },
    o.bodyFor && ((kind, tag, length) => o.bodyFor!(peer, kind, tag, length)),
  );
  let failed = false;
  const socket = connector.connect(address, {
    onread: readInto(decoder, (err) => {
      failed = true;
      inbound.badFrame(peer, err, socket);
    }),
  });
  socket.unref();
  // Our data may follow the hello at once (the peer reads the hello first).
  socket.write(encodeControl({ type: 'peer-hello', v: OOB_PROTOCOL_VERSION, job: o.jobId, rank: o.rank, secret: o.secret }));
  table.attach(peer, socket, () => failed);
}
