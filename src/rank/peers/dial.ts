// A rank connects to a peer when it first has something for it (as Open MPI's TCP
// transport does): a ring's rank keeps two links, not one per rank, and a checkpoint
// drains, closes and re-makes only those. It says who it is (peer-hello, proving the
// job secret for the address it dialed: wire/hello-proof.ts) and writes nothing more
// until the peer's answer, which proves the secret back (else it is a stranger's):
//   peer-ack      the link is up, both ways; queued frames go out;
//   peer-crossed  the peer is connecting to us at the same moment, and the higher
//                 rank's connection is the one kept: we take theirs when it comes;
//   peer-busy     the peer is past its drain, on its way down for a dump: our frames
//                 wait in memory until the resume names its new address.
// Nothing is written before the answer, so a connection the peer never takes up
// loses nothing.
import { CkptError, ErrorCodes } from '../../errors.js';
import { decodeControl, encodeControl, FrameDecoder, FrameKind, MAX_CONTROL_BYTES } from '../../wire/frame.js';
import { formatAddress, OOB_PROTOCOL_VERSION, type Address } from '../../wire/channel.js';
import { answerProven, proveHello } from '../../wire/hello-proof.js';
import type { Connector } from '../../wire/connector.js';
import { readInto, type Inbound } from './inbound.js';
import type { LinkTable } from './links.js';
import type { PeerNetworkOptions } from './options.js';
import { quietly } from './sockets.js';

export interface DialContext {
  o: PeerNetworkOptions;
  table: LinkTable;
  inbound: Inbound;
}

/** Connects to `peer` at `address` through `connector`; the link is the peer's once it answers peer-ack. */
export function dialPeer(ctx: DialContext, connector: Connector, peer: number, address: Address): void {
  const { o, table, inbound } = ctx;
  const link = table.links[peer]!;
  const proven = proveHello(o.secret, { role: 'peer', job: o.jobId, rank: o.rank, to: formatAddress(address) });
  let answered = false;
  let failed = false;
  // No data before the answer: a stranger at that address costs a frame header.
  const limits = { control: MAX_CONTROL_BYTES, data: 0 };
  const decoder = new FrameDecoder(
    (frame) => {
      if (answered) return inbound.arrived(peer, frame);
      const m = frame.kind === FrameKind.CONTROL ? decodeControl(frame.payload) : undefined;
      if (m?.type === 'peer-ack' || m?.type === 'peer-crossed' || m?.type === 'peer-busy') {
        if (!answerProven(o.secret, m.type, proven.nonce, m.proof)) {
          throw new CkptError(ErrorCodes.OOB_AUTH, `rank ${peer} at ${formatAddress(address)} did not prove the job secret (its ${m.type}): a stranger answers there`);
        }
        answered = true;
        if (m.type === 'peer-ack') {
          limits.data = o.maxMessageBytes;
          // Up before it is no longer on its way: a drain never sees this pair without a link.
          table.attach(peer, socket, () => failed);
          table.dialEnded(peer, socket);
          return;
        }
        table.dialEnded(peer, socket);
        quietly(socket);
        return;
      }
      // A refusal (a duplicate) proves the secret: else a stranger answers at that address.
      if (m?.type === 'error') {
        if (!answerProven(o.secret, 'error', proven.nonce, m.proof)) {
          throw new CkptError(ErrorCodes.OOB_AUTH, `rank ${peer} at ${formatAddress(address)} did not prove the job secret (its error): a stranger answers there`);
        }
        return inbound.arrived(peer, frame);
      }
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${peer} answered our peer-hello with '${String(m?.type ?? 'data')}'`);
    },
    limits,
    o.bodyFor && ((kind, tag, length) => (answered ? o.bodyFor!(peer, kind, tag, length) : undefined)),
  );
  const socket = connector.connect(address, {
    onread: readInto(decoder, (err) => {
      failed = true;
      table.dialEnded(peer, socket);
      inbound.badFrame(peer, err, socket);
    }),
  });
  socket.unref();
  link.dialing = socket;
  // Not up (the peer is down for a dump, or gone): the frames stay queued for the next address.
  const ended = () => {
    if (!answered) table.dialEnded(peer, socket);
  };
  socket.on('error', ended);
  socket.on('close', ended);
  socket.write(encodeControl({ type: 'peer-hello', v: OOB_PROTOCOL_VERSION, role: 'peer', job: o.jobId, rank: o.rank, ...proven }));
}
