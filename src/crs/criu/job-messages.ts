// The criu checkpointer's own fields of the job protocol: a rank's prepare reply
// (what the restore needs to know of its process) — checked by the coordinator
// with this validator, and recorded in the manifest's rank record.
import { array, bool, count, literal, nullable, object, optional, str, type Checked } from '../../wire/validate.js';

export const criuPrepareReply = object({
  written: array(count),
  pid: count,
  tree: array(count),
  stdio: array(nullable(str)),
  shellJob: optional(bool),
  networkLock: optional(literal('skip', 'nftables')),
  rejoin: str,
});
export type CriuPrepareReply = Checked<typeof criuPrepareReply>;
