// A writer's beacon: an abstract unix socket (no file anywhere) named after the
// writer's tag, bound before the tag is handed out and held while the process lives.
// It judges a writer no /proc here can show — a node agent as root is pid 1 of a pid
// namespace of its own, whose pids mean nothing elsewhere: abstract names are per
// network namespace, not pid namespace, so a connection refused there (nothing bound
// to the name: the kernel unbound it with its process) proves the writer gone. Anyone
// in the network namespace may bind a name, but that only makes a dead writer look
// alive (its leftovers are kept): a live writer's name cannot be taken from it. A
// process that could not bind its beacon hands out no tag.
import { connect, createServer } from 'node:net';
import { errnoCode } from '../errors.js';
import { formatTag, goneByPid, ownTag, type WriterTag } from './writer-tag.js';

const beaconName = (t: WriterTag): string => `\0ckpt-writer-${t.pid}.${t.start}.${t.pidns}`;

let held: Promise<string | undefined> | undefined;
let heldNow: string | undefined;

/** This process's tag, once its beacon is bound (held until the process ends); undefined when it cannot have one. */
export function heldTag(): Promise<string | undefined> {
  held ??= (async () => {
    const tag = ownTag();
    if (!tag) return undefined;
    const server = createServer((s) => s.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: beaconName(tag) }, () => resolve());
      });
    } catch {
      return undefined; // the name taken (by nobody of ours): no tag rather than one that could be misjudged
    }
    server.unref();
    heldNow = formatTag(tag);
    return heldNow;
  })();
  return held;
}

/** heldTag()'s tag if its beacon is already bound. */
export const heldTagNow = (): string | undefined => heldNow;

/** Whether connecting to the beacon of `tag` is refused (nothing bound to its name in this network namespace). */
function beaconRefused(tag: WriterTag): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect({ path: beaconName(tag) });
    const done = (gone: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(gone);
    };
    // A live holder accepts at once; one that neither accepts nor refuses proves nothing.
    const timer = setTimeout(() => done(false), 2000);
    s.once('connect', () => done(false));
    s.once('error', (err) => done(errnoCode(err) === 'ECONNREFUSED'));
  });
}

/**
 * Whether the writer named by `tag` is provably gone: by /proc where it shows the
 * writer's pid namespace, else by its beacon where we share its network namespace.
 * Never another host's, never ourselves.
 */
export async function writerGone(tag: WriterTag): Promise<boolean> {
  const byPid = goneByPid(tag);
  if (byPid !== undefined) return byPid;
  const me = ownTag();
  return me !== undefined && tag.netns === me.netns && beaconRefused(tag);
}
