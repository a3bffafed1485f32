// A rank accepts a peer's connection, and admits it as the link with that rank once
// its peer-hello proves it a member of this job, dialed at this rank's address
// (wire/hello-proof.ts; answered peer-ack, which proves the secret back, before
// anything else). Two ranks that connect to each other at the same moment keep the higher
// rank's connection (peer-crossed to the other). Once this rank is past its drain on
// its way down for a dump, a new link could carry frames it would never read: those
// are turned away (peer-busy; they wait in the sender's memory). Strangers are
// refused, and never hold more than a few descriptors for long.
import type { Socket } from 'node:net';
import { CkptError, ErrorCodes } from '../../errors.js';
import { decodeControl, encodeControl, FrameDecoder, FrameKind, MAX_CONTROL_BYTES } from '../../wire/frame.js';
import { helloTimeoutMs, HelloGate, OOB_PROTOCOL_VERSION } from '../../wire/channel.js';
import { helloProven, proveAnswer, refusalProof } from '../../wire/hello-proof.js';
import { readInto, type Inbound } from './inbound.js';
import type { LinkTable } from './links.js';
import type { PeerNetworkOptions } from './options.js';
import { readingWithOnread } from './sockets.js';

export class PeerAdmission {
  /** Accepted connections whose peer-hello has not been accepted yet (closed after the hello timeout). */
  private readonly gate: HelloGate;

  /** Past its drain (on its way down for a dump): no new link. */
  sealed = false;

  /** Where it listens (formatted, as handed out): a peer-hello must name it. */
  address = '';

  constructor(
    private readonly o: PeerNetworkOptions,
    private readonly table: LinkTable,
    private readonly inbound: Inbound,
  ) {
    this.gate = new HelloGate(o.maxUnauthenticated);
  }

  /** Strangers waiting for their hello are gone (their sockets closed quietly with the links). */
  reset(): void {
    this.gate.reset();
  }

  /** A peer connected; its hello says which. */
  accept(accepted: Socket): void {
    const { o, table, inbound } = this;
    // Strangers that never say hello must not fill our descriptors: at most so
    // many wait for their hello at once (the longest waiting goes), each for the hello timeout.
    // (Closed through the socket it is read by: `socket` below, a duplicate of `accepted` when one could be had.)
    const admitted = this.gate.admit(() => {
      socket.on('error', () => {});
      socket.destroy();
    });
    const authenticated = () => {
      admitted();
      clearTimeout(helloTimer);
    };
    const timeoutMs = o.helloTimeoutMs ?? helloTimeoutMs();
    const helloTimer = setTimeout(() => {
      if (peer === -1) refuse(new CkptError(ErrorCodes.TIMEOUT, `no peer-hello within ${timeoutMs} ms`));
    }, timeoutMs);
    helloTimer.unref();
    /** The peer's rank once admitted; -1 before its hello, -2 refused. */
    let peer = -1;
    let failed = false;
    // Data is refused until the hello is accepted: before that a stranger's frame costs its header.
    const limits = { control: MAX_CONTROL_BYTES, data: 0 };
    /** Its peer-hello's nonce once the hello proved the secret: a refusal from then on proves it back. */
    let provenNonce: string | undefined;
    const refuse = (err: CkptError) => {
      socket.end(encodeControl({ type: 'error', code: err.code, message: err.message, ...refusalProof(o.secret, provenNonce) }));
      // A stranger that does not read its refusal is not waited for long (it is still counted until then).
      setTimeout(() => socket.destroy(), 1000).unref();
      peer = -2;
    };
    const bodyFor = o.bodyFor;
    const decoder = new FrameDecoder(
      (frame) => {
        if (peer >= 0) return inbound.arrived(peer, frame);
        if (peer === -2) return;
        const m = frame.kind === FrameKind.CONTROL ? decodeControl(frame.payload) : undefined;
        if (!m || m.type !== 'peer-hello') throw new CkptError(ErrorCodes.OOB_PROTOCOL, 'expected peer-hello');
        if (m.v !== OOB_PROTOCOL_VERSION) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `peer protocol version ${String(m.v)} not supported`);
        if (m.job !== o.jobId || m.role !== 'peer' || !helloProven(o.secret, m, [this.address])) {
          return refuse(new CkptError(ErrorCodes.OOB_AUTH, 'wrong job secret'));
        }
        if (!this.gate.fresh(m.nonce as string)) return refuse(new CkptError(ErrorCodes.OOB_AUTH, 'a peer-hello this rank took before: replayed'));
        provenNonce = m.nonce as string;
        const r = m.rank;
        if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= o.size || r === o.rank) {
          return refuse(new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${String(r)} is not a peer in this job`));
        }
        const link = table.links[r]!;
        if (link.socket && !link.closed && !link.error) return refuse(new CkptError(ErrorCodes.OOB_AUTH, `duplicate rank ${r}: it is already connected`));
        // Not a refusal: the peer keeps its frames and sends them on another link.
        const turnAway = (type: 'peer-crossed' | 'peer-busy') => {
          peer = -2;
          authenticated();
          socket.end(encodeControl({ type, proof: proveAnswer(o.secret, type, m.nonce as string) }));
        };
        if (this.sealed) return turnAway('peer-busy');
        // Both connecting: the higher rank's connection is kept.
        const crossed = link.dialing !== undefined;
        if (crossed && o.rank > r) return turnAway('peer-crossed');
        // A closed link (that rank went down for a criu dump and is back): replaced.
        if (link.socket || link.error) table.reset(r);
        peer = r;
        authenticated();
        limits.data = o.maxMessageBytes;
        socket.write(encodeControl({ type: 'peer-ack', proof: proveAnswer(o.secret, 'peer-ack', m.nonce as string) }));
        table.attach(r, socket, () => failed);
        // Ours goes once theirs is up: a drain never sees this pair without a link.
        if (crossed) table.dropDial(r);
      },
      limits,
      bodyFor && ((kind, tag, length) => (peer >= 0 ? bodyFor(peer, kind, tag, length) : undefined)),
    );
    const onError = (err: unknown): void => {
      if (peer >= 0) {
        failed = true;
        inbound.badFrame(peer, err, socket);
      } else if (peer === -1) {
        refuse(err as CkptError);
      }
    };
    const socket = readingWithOnread(accepted, readInto(decoder, onError));
    socket.unref();
    socket.setNoDelay?.(true);
    table.accepted.add(socket);
    if (socket === accepted) {
      // No second fd to be had: read 'data' chunks (a large payload is copied once into its buffer).
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (err) {
          onError(err);
        }
      });
      socket.resume();
    }
    socket.on('close', () => {
      table.accepted.delete(socket);
      authenticated();
    });
    // Errors before the hello was accepted concern a stranger's connection only.
    socket.on('error', () => {});
  }
}
