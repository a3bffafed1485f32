// The criu checkpointer's own fields of the job protocol: a rank's prepare and dump
// replies (what the restore needs to know of its process) — checked by the
// coordinator with these validators, and recorded in the manifest's rank record.
import { array, bool, count, literal, nullable, object, optional, str, type Checked } from '../../wire/validate.js';

export const criuPrepareReply = object({
  written: array(count),
  /** The rank drains at its dump request (`ckpt-dump {expected}`): no drain round. */
  drainAtDump: optional(bool),
  // What the restore needs of the rank's process: in its dump request's reply (made
  // there, by every rank at once); in the prepare reply from a rank of an older ckpt.
  ...processFields(),
});
export type CriuPrepareReply = Checked<typeof criuPrepareReply>;

/** Its process as CRIU dumps it: in the report after its dump, or in the reply to `ckpt-dump` of a rank its dump leaves frozen. */
export const criuDumpReply = object(processFields());

function processFields() {
  return {
    pid: optional(count),
    tree: optional(array(count)),
    stdio: optional(array(nullable(str))),
    shellJob: optional(bool),
    networkLock: optional(literal('skip', 'nftables')),
    rejoin: optional(str),
    /** Its unix connection to the coordinator, kept open across the dump (`socket:[ino]`): a restore hands in a stand-in. */
    control: optional(str),
  };
}
