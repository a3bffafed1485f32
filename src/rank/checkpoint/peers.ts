// The peer links' part in a checkpoint (DMTCP's socket plugin in small): hold
// sends so that what a rank reports written stays true, drain until nothing is in
// flight to this rank (by counts, or by a marker on each link: DMTCP's drain
// cookie), and after a criu checkpoint re-link with the peers' new addresses.
// Without peers (a singleton) every step is empty.
import { CkptError, ErrorCodes } from '../../errors.js';
import { parse } from '../../wire/validate.js';
import { counts } from '../../wire/messages.js';
import type { PeerNetwork } from '../peers.js';
import type { Session } from './session.js';

export class PeersParticipant {
  constructor(
    private readonly rank: number,
    private readonly peers: PeerNetwork | undefined,
  ) {}

  /** Frames handed to each peer's socket so far. */
  written(): number[] {
    return [...(this.peers?.written ?? [])];
  }

  hold(): void {
    this.peers?.pause();
  }

  release(): void {
    this.peers?.resume();
  }

  /** criu: every link is up before sends are held (a rank still wiring up cannot be cut). */
  async linked(timeoutMs: number): Promise<void> {
    if (this.peers && !this.peers.linked) await this.peers.whenLinked(timeoutMs);
  }

  /** Resolves once this rank has read, from each rank i, `expected[i]` frames: nothing is in flight to it. */
  async drained(s: Session, expected: unknown): Promise<void> {
    const peers = this.peers;
    if (!peers) return;
    const want = parse(counts, expected, `rank ${this.rank}: the drain request's frame counts`);
    if (want.length !== peers.size) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.rank}: a drain request without one frame count per rank`);
    await this.untilRead(s, peers, () => (want.every((n, i) => i === this.rank || peers.read[i]! >= n) ? 'in' : 'waiting'));
  }

  /** Drain markers of checkpoint attempt `id` on every link (sends are held): see PeerNetwork.sendMarkers. */
  sendMarkers(id: number, abort = false): void {
    this.peers?.sendMarkers(id, abort);
  }

  /**
   * Resolves once every peer's marker of checkpoint attempt `id` is in: everything each sent
   * this rank before holding its sends has been read (each link is one ordered
   * stream). Fails if a peer takes no part (its abort marker) or its link ends first.
   */
  async markersIn(s: Session, id: number): Promise<void> {
    const peers = this.peers;
    if (!peers) return;
    // Any peer that takes no part fails the wait at once, whichever peers are still awaited
    // (one whose link was not up when another could not begin got no marker from it).
    const state = (): 'in' | 'waiting' | Error => {
      let waiting = false;
      for (let r = 0; r < peers.size; r++) {
        if (r === this.rank) continue;
        const m = peers.markers[r];
        if (m?.id === id && m.abort) return new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${this.rank}: rank ${r} takes no part in this checkpoint`);
        if (m?.id === id) continue;
        // No link: nothing can be in flight from that rank. One of ours on its way: its answer decides.
        const link = peers.linkState(r);
        if (link === 'none') continue;
        if (link === 'up' && peers.ended[r]) return new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${this.rank}: the link with rank ${r} ended before its drain marker`);
        waiting = true;
      }
      if (waiting) return 'waiting';
      // Drained, and on its way down: no new link from now on (its frames would not be read).
      peers.seal();
      return 'in';
    };
    await this.untilRead(s, peers, state);
  }

  /**
   * Resolves once `state` says 'in', checked now and after every frame read (or a
   * peer's end); fails with the error it returns. An abort stops the watch.
   */
  private async untilRead(s: Session, peers: PeerNetwork, state: () => 'in' | 'waiting' | Error): Promise<void> {
    const first = state();
    if (first === 'in') return;
    if (first instanceof Error) throw first;
    await s.until(
      new Promise<void>((resolve, reject) => {
        const onRead = () => {
          const now = state();
          if (now === 'waiting') return;
          peers.onRead = undefined;
          if (now === 'in') resolve();
          else reject(now);
        };
        peers.onRead = onRead;
        void s.ended.promise.then(() => {
          if (peers.onRead === onRead) peers.onRead = undefined;
        });
      }),
    );
  }

  /**
   * After a criu checkpoint: a rank that went down learns every peer's new address
   * (links are made again when wanted); one that stayed up while others went down
   * (an aborted checkpoint) forgets the links that closed.
   */
  relink(wentDown: boolean, addresses: string[] | undefined): void {
    if (!this.peers) return;
    const ok = addresses && addresses.length === this.peers.size ? addresses : undefined;
    if (wentDown) {
      if (!ok) throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${this.rank}: ckpt-resume without the peers' addresses`);
      this.peers.knowPeers(ok);
    } else if (ok) {
      this.peers.relink(ok);
    }
  }
}
