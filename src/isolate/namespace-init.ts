// The command line that starts an isolated job, and the two small bash scripts it
// runs. The shape follows what CRIU needs to dump a whole tree (see
// docs/ISOLATE.md):
//
//   ckpt run (Node) ── unshare --pid ── bash OUTER           host pid namespace
//                                         └─ setsid unshare --mount [--net]
//                                              └─ bash INIT   pid 1 of the job
//                                                   └─ CMD …
//
// OUTER stays in the host pid namespace: it prints the init's host pid and exits
// with the init's status (util-linux's `unshare --fork` misreports a child killed
// by a signal). INIT owns fresh mount (+ network) namespaces that no process
// outside the job shares, mounts the private file systems, opens stdio inside the
// namespace (an fd opened outside fails the dump), closes inherited fds, and runs
// CMD as its child so that the job's pid 1 can forward signals and reap orphans.

/** Where the job's output directory is bind-mounted inside the mount namespace. */
export const IO_MOUNT = '/tmp/.ckpt-io';
/** CRIU's key for that bind mount: dumps mark it external, restores map it to a fresh directory. */
export const IO_EXTERNAL_KEY = 'ckpt-io';
/** Exit status of INIT when the namespace could not be set up (CMD never ran). */
export const SETUP_FAILED_STATUS = 125;

/**
 * pid 1 of the job. Environment in: CKPT_ISO_IO (host path of the output
 * directory), CKPT_ISO_CWD, CKPT_ISO_NET (1 for a network namespace). Writes
 * `ready` on its inherited stdout once CMD runs, then closes it.
 */
export const INIT_SCRIPT = String.raw`
set -u
io=$CKPT_ISO_IO; wd=$CKPT_ISO_CWD; net=$CKPT_ISO_NET
unset CKPT_ISO_IO CKPT_ISO_CWD CKPT_ISO_NET
fail() { echo "ckpt: cannot set up the isolated job: $*" >&2; exit ${SETUP_FAILED_STATUS}; }
mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount /proc"
# The output directory may itself live under /tmp: enter it before /tmp is covered,
# then bind it through our own cwd (mount -c: no path canonicalisation).
cd "$io" || fail "no output directory $io"
# Host mounts below /tmp and /dev/shm would only be covered, yet CRIU would have to
# recreate them at every restore (and fail once they are gone on the host).
for m in $(awk '$5 ~ /^\/(tmp|dev\/shm)\/./ { print $5 }' /proc/self/mountinfo | sort -r); do
  case "$io/" in "$m"/*) continue ;; esac
  umount -l "$m" 2>/dev/null
done
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp || fail "mount /tmp"
mkdir -m 0700 ${IO_MOUNT} && mount -c --bind /proc/self/cwd ${IO_MOUNT} || fail "bind the output directory"
cd / || fail "cd /"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "mount /dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts || fail "mount devpts"
mount --bind /dev/pts/ptmx /dev/ptmx || fail "bind /dev/ptmx"
# ip-netns bind mounts break the dump ("doesn't have a proper root mount").
for m in $(awk '$5 ~ /^\/run\/netns(\/|$)/ { print $5 }' /proc/self/mountinfo | sort -r); do
  umount "$m" 2>/dev/null || umount -l "$m" || fail "umount $m"
done
if [ "$net" = 1 ]; then ip link set lo up || fail "bring lo up"; fi
cd "$wd" 2>/dev/null || fail "the working directory $wd is not visible inside the job (/tmp and /dev/shm are private there)"
exec 3>&1 </dev/null >>${IO_MOUNT}/stdout 2>>${IO_MOUNT}/stderr || fail "open stdio"
for fd in $(ls /proc/$$/fd); do
  if [ "$fd" -gt 3 ] && [ -e "/proc/$$/fd/$fd" ]; then exec {fd}>&-; fi
done
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
trap 'kill -HUP "$child" 2>/dev/null' HUP
# A background command would ignore SIGINT/SIGQUIT; give CMD default dispositions.
(trap - INT QUIT TERM HUP; exec "$@") 3>&- &
child=$!
echo ready >&3
exec 3>&-
while :; do
  wait "$child"; st=$?
  kill -0 "$child" 2>/dev/null || break
done
wait "$child" 2>/dev/null; again=$?
[ "$again" -ne 127 ] && st=$again
exit "$st"
`;

/** Runs in the host pid namespace: starts INIT, reports its pid, exits with its status. */
export const OUTER_SCRIPT = String.raw`
init=$1; net=$2; shift 2
if [ "$net" = 1 ]; then ns="--mount --net"; else ns="--mount"; fi
setsid unshare $ns --propagation private -- bash -c "$init" ckpt-init "$@" &
echo "$!"
wait "$!"
`;

export interface NamespaceCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
}

export function namespaceCommand(options: { command: readonly string[]; ioDir: string; cwd: string; net: boolean }): NamespaceCommand {
  const net = options.net ? '1' : '0';
  return {
    file: 'unshare',
    args: ['--pid', '--', 'bash', '-c', OUTER_SCRIPT, 'ckpt-outer', INIT_SCRIPT, net, ...options.command],
    env: { CKPT_ISO_IO: options.ioDir, CKPT_ISO_CWD: options.cwd, CKPT_ISO_NET: net },
  };
}
