// What a PeerNetwork is told: who this rank is in which job, its limits, and where
// frames, ends and failures go.
import type { CkptError } from '../../errors.js';
import type { Frame, FrameKind } from '../../wire/frame.js';

export interface PeerNetworkOptions {
  rank: number;
  size: number;
  /** Mutable: a job restarted by CRIU has a new id and secret. */
  jobId: string;
  secret: string;
  maxMessageBytes: number;
  /** How long a send waits for its peer's connection to arrive (a lower rank waits for a higher one). */
  linkTimeoutMs: number;
  /** How long an accepted connection has to present a valid peer-hello (default: the coordinator's, `CKPT_HELLO_TIMEOUT_MS`). */
  helloTimeoutMs?: number;
  /** Accepted connections held at once before their hello (default MAX_UNAUTHENTICATED); more are closed at once. */
  maxUnauthenticated?: number;
  /** A data frame from a peer, in that peer's send order. */
  onFrame: (source: number, frame: Frame) => void;
  /** Where a large payload from `source` should be read to, once its header is in (see FrameDecoder). */
  bodyFor?: (source: number, kind: FrameKind, tag: number, length: number) => Buffer | undefined;
  /** The stream from a peer ended: it sent everything it will ever send us. */
  onPeerEnd: (source: number) => void;
  /** Something broke that makes the communicator unusable. */
  onFatal: (err: CkptError) => void;
}
