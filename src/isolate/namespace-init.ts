// The command line that starts an isolated job, and the small bash scripts it
// runs. The shape follows what CRIU needs to dump a whole tree (see
// docs/ISOLATE.md):
//
//   ckpt run (Node) ── unshare --mount ── bash PREP            host user namespace
//                        └─ unshare --user ── bash USERNS      waits for its uid/gid maps
//                             └─ unshare --pid ── bash OUTER   host pid namespace
//                                   └─ setsid unshare --mount --ipc [--net]
//                                        └─ bash INIT          pid 1 of the job
//                                             └─ CMD …
//
// PREP and USERNS (the default; CKPT_ISOLATE_USERNS=0 leaves them out) put every
// namespace of the job under a user namespace that root owns, with an identity
// map: root may then read the rlimits of the job's processes of other users, as
// CRIU must, without CAP_SYS_RESOURCE. PREP first removes host mounts that would
// be locked (hence unremovable, undumpable) inside it.
// OUTER stays in the host pid namespace: it prints the init's host pid and exits
// with the init's status (util-linux's `unshare --fork` misreports a child killed
// by a signal). INIT owns fresh mount and IPC (+ network) namespaces that no process
// outside the job shares, mounts the private file systems, opens stdio inside the
// namespace (an fd opened outside fails the dump), closes inherited fds, and runs
// CMD as its child so that the job's pid 1 can forward signals and reap orphans.
import { trustedPath } from '../util/trusted-tool.js';

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
userpath=${'$'}{CKPT_ISO_PATH-}; haspath=${'$'}{CKPT_ISO_PATH+1}
unset CKPT_ISO_IO CKPT_ISO_CWD CKPT_ISO_NET CKPT_ISO_PATH
fail() { echo "ckpt: cannot set up the isolated job: $*" >&2; exit ${SETUP_FAILED_STATUS}; }
mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount /proc"
# The output directory may itself live under /tmp: enter it before /tmp is covered,
# then bind it through our own cwd (mount -c: no path canonicalisation).
cd "$io" || fail "no output directory $io"
# Host mounts below /tmp and /dev/shm would only be covered, yet CRIU would have to
# recreate them at every restore (and fail once they are gone on the host).
# (Mount points as mountinfo writes them, split on blanks it escapes; never globbed: a
# user's mount named with a * must not expand to their link to another one.)
set -f
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
set +f
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
# CMD gets the job's own PATH back (the set-up ran with root's trusted part of it).
(trap - INT QUIT TERM HUP; if [ -n "$haspath" ]; then PATH=$userpath; fi; exec "$@") 3>&- &
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
# --ipc: System V shared memory and semaphores must live in the dumped tree's own
# IPC namespace (CRIU: "SysVIPC shmem map … doesn't live in IPC ns").
if [ "$net" = 1 ]; then ns="--mount --ipc --net"; else ns="--mount --ipc"; fi
setsid unshare $ns --propagation private -- bash -c "$init" ckpt-init "$@" &
echo "$!"
wait "$!"
`;

/**
 * The first stage with a user namespace: runs in a fresh user namespace (made by
 * `unshare --user` in the host's mount namespace prepared by PREP), says `userns`
 * on stdout, waits until the launcher has written the identity uid/gid maps and
 * answered `go` on stdin, then starts the pid namespace and OUTER. Every namespace
 * of the job is thereby owned by a user namespace that root owns: root needs no
 * CAP_SYS_RESOURCE to read the rlimits of the job's processes of other users.
 */
export const USERNS_SCRIPT = String.raw`
echo userns
read -r go || exit ${SETUP_FAILED_STATUS}
[ "$go" = go ] || exit ${SETUP_FAILED_STATUS}
exec </dev/null
exec unshare --pid -- "$@"
`;

/**
 * With a user namespace, host mounts the job must not keep (below /tmp and /dev/shm,
 * ip-netns bind mounts) are removed first, in a mount namespace of the host's user
 * namespace: copied into a mount namespace owned by the job's user namespace they
 * would be locked to their parents and could no longer be unmounted.
 */
export const PREP_SCRIPT = String.raw`
set -f
for m in $(awk '$5 ~ /^\/(tmp|dev\/shm)\/./ || $5 ~ /^\/run\/netns(\/|$)/ { print $5 }' /proc/self/mountinfo | sort -r); do
  case "$CKPT_ISO_IO/" in "$m"/*) continue ;; esac
  umount -l "$m" 2>/dev/null
done
set +f
# The host's /dev/shm (possibly several mounts stacked) would be dumped as a tmpfs under
# the job's own, which CRIU reads by unmounting what covers it: locked mounts cannot be.
while awk '$5 == "/dev/shm" { found = 1 } END { exit !found }' /proc/self/mountinfo; do
  umount -l /dev/shm || break
done
# cgroup v1 hierarchies cannot be mounted again from inside a user namespace: a
# restore would fail on them (CRIU: Unable to mount cgroup … Operation not permitted).
if awk '$5 == "/sys/fs/cgroup" { found = 1 } END { exit !found }' /proc/self/mountinfo; then
  umount -R -l /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
fi
init=$1; shift
exec unshare --user -- bash -c "$init" ckpt-userns "$@"
`;

/** The identity map a job's user namespace gets: every uid and gid maps to itself. */
export const IDENTITY_MAP = '0 0 4294967295\n';

export interface NamespaceCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  /** The first stdout line is `userns`: write the maps for that pid, then `go` on stdin. */
  userns: boolean;
}

/**
 * `path`: the job's PATH. The set-up scripts (run as root when root starts the job)
 * find their tools in the part of it nobody else could change (util/trusted-tool.ts);
 * the job's command gets it whole again.
 */
export function namespaceCommand(options: { command: readonly string[]; ioDir: string; cwd: string; net: boolean; userns: boolean; path?: string }): NamespaceCommand {
  const net = options.net ? '1' : '0';
  const env: Record<string, string> = { CKPT_ISO_IO: options.ioDir, CKPT_ISO_CWD: options.cwd, CKPT_ISO_NET: net };
  if (options.path !== undefined) Object.assign(env, { PATH: trustedPath(options.path), CKPT_ISO_PATH: options.path });
  const outer = ['bash', '-c', OUTER_SCRIPT, 'ckpt-outer', INIT_SCRIPT, net, ...options.command];
  if (!options.userns) return { file: 'unshare', args: ['--pid', '--', ...outer], env, userns: false };
  return {
    file: 'unshare',
    args: ['--mount', '--propagation', 'private', '--', 'bash', '-c', PREP_SCRIPT, 'ckpt-prep', USERNS_SCRIPT, ...outer],
    env,
    userns: true,
  };
}
