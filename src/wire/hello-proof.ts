// Who knows the job secret proves it without sending it. A hello carried the secret
// itself: over TCP, whoever listened at the address a rank or an agent dialed (a
// port another user took once its owner had gone) got it, and with it the job. Now
// the dialer sends a fresh nonce and an HMAC of the secret over what it claims (its
// role, job, rank) and the address it dialed, and the listener answers with an HMAC
// over that nonce before anything else is trusted:
//   - a stranger that is dialed learns nothing it can use: the proof names its own
//     address, so it is refused by any real member it replays it to;
//   - a stranger that answers cannot prove itself, so nothing is sent to it;
//   - nor can it end the dialer with a refusal or an abort of its own: those prove the
//     secret too (a listener proves a refusal only to a hello that proved it: no proof
//     is made to a stranger's order).
// A hello seen on the wire and sent again to the same listener is refused there: each
// listener remembers the nonces it took (HelloGate.fresh, wire/channel.ts). What follows
// a hello is not authenticated frame by frame: the network between nodes is trusted
// not to be read or changed by others (docs/SECURITY.md).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CkptError, ErrorCodes } from '../errors.js';
import { remoteError } from './channel.js';
import type { ControlMessage } from './frame.js';

/** What a hello claims, besides the job: whom it is from and which address it dialed. */
export interface HelloClaim {
  role: string;
  job: string;
  /** A rank's number; none for an agent or a control client. */
  rank?: number;
  /** The listener's address as the dialer dialed it (unix:… or tcp:…). */
  to: string;
}

/** The fields a hello carries in place of the secret. */
export interface HelloProof {
  to: string;
  nonce: string;
  proof: string;
}

const NONCE_BYTES = 16;

function mac(secret: string, parts: readonly unknown[]): Buffer {
  return createHmac('sha256', secret).update(JSON.stringify(parts)).digest();
}

function equalHex(hex: unknown, expected: Buffer): boolean {
  if (typeof hex !== 'string' || hex.length !== expected.length * 2 || !/^[0-9a-f]+$/.test(hex)) return false;
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
}

/** The dialer's proof for `claim`, with a fresh nonce. */
export function proveHello(secret: string, claim: HelloClaim): HelloProof {
  const nonce = randomBytes(NONCE_BYTES).toString('hex');
  const proof = mac(secret, ['hello', claim.role, claim.job, claim.rank ?? null, claim.to, nonce]).toString('hex');
  return { to: claim.to, nonce, proof };
}

/**
 * Whether a received hello proves the secret for what it claims, dialed at one of
 * `ours` (the listener's own addresses).
 */
export function helloProven(secret: string, m: Record<string, unknown>, ours: readonly string[]): boolean {
  const { role, job, to, nonce } = m;
  if (typeof role !== 'string' || typeof job !== 'string' || typeof to !== 'string' || !ours.includes(to)) return false;
  if (typeof nonce !== 'string' || nonce.length !== NONCE_BYTES * 2) return false;
  const rank = m.rank === undefined ? null : m.rank;
  return equalHex(m.proof, mac(secret, ['hello', role, job, rank, to, nonce]));
}

/** The listener's answer of type `answer` to the hello with `nonce`: proves it holds the secret too. */
export function proveAnswer(secret: string, answer: string, nonce: string): string {
  return mac(secret, ['answer', answer, nonce]).toString('hex');
}

/** Whether an answer of type `answer` proves the secret for our hello's `nonce`. */
export function answerProven(secret: string, answer: string, nonce: string, proof: unknown): boolean {
  return equalHex(proof, mac(secret, ['answer', answer, nonce]));
}

/** Throws ECKPT_OOB_AUTH unless `m` is the `answer` to our hello's `nonce`, proving the secret: else a stranger answers at `address` in place of `who`. */
export function requireAnswer(secret: string, answer: string, nonce: string, m: { type?: unknown; proof?: unknown }, address: string, who: string): void {
  if (m.type !== answer || !answerProven(secret, answer, nonce, m.proof)) {
    throw new CkptError(ErrorCodes.OOB_AUTH, `what answers at ${address} is not ${who} (its ${answer} does not prove the job secret)`);
  }
}

/**
 * The first answer to our hello: `answer` proving the secret, or a refusal (`error`)
 * proving it, thrown as what it says (`refused`: its text when it has none). Anything
 * else that does not prove the secret is a stranger's: ECKPT_OOB_AUTH.
 */
export function requireAnswerOrRefusal(secret: string, answer: string, nonce: string, m: ControlMessage, address: string, who: string, refused: string): void {
  if (m.type === 'error') {
    requireAnswer(secret, 'error', nonce, m, address, who);
    throw remoteError(m, refused);
  }
  requireAnswer(secret, answer, nonce, m, address, who);
}

/** What a listener's refusal carries: a proof over the hello's nonce once that hello proved the secret, else nothing (none made to a stranger's order). */
export function refusalProof(secret: string, provenNonce: string | undefined): { proof?: string } {
  return provenNonce === undefined ? {} : { proof: proveAnswer(secret, 'error', provenNonce) };
}
