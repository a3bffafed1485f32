"""A minimal client of ckpt's self-checkpoint protocol (docs/SELF-PROTOCOL.md).

Run the program under ckpt-self:   ckpt-self --dir STORE -- python3 prog.py
and restart it with:               ckpt restart STORE

    import ckpt_self
    state = ckpt_self.restore(default={"i": 0}, load=lambda path: json.load(open(path)))
    ...
    ckpt_self.checkpoint(save=lambda path: write_private(path, json.dumps(state).encode()))

Only the standard library; Python 3.6+.
"""
import os

_fd = None
_buf = b""


def _control():
    global _fd
    if _fd is None:
        if os.environ.get("CKPT_SELF_PROTOCOL") != "1" or "CKPT_SELF_FD" not in os.environ:
            raise RuntimeError("not started by ckpt-self (CKPT_SELF_FD is not set)")
        _fd = int(os.environ["CKPT_SELF_FD"])
    return _fd


def _send(line):
    data = (line + "\n").encode()
    while data:
        data = data[os.write(_control(), data):]


def _recv():
    global _buf
    while b"\n" not in _buf:
        chunk = os.read(_control(), 4096)
        if not chunk:  # ckpt is gone: nothing will restart us from here
            raise SystemExit("ckpt_self: the supervisor went away")
        _buf += chunk
    line, _buf = _buf.split(b"\n", 1)
    return line.decode()


def write_private(path, data):
    """Creates `path` (it must not exist), 0600, and writes `data` to it durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def restore(default, load):
    """In a restarted run: load(path) of the saved state, then tells ckpt it is read.
    Otherwise returns `default`."""
    path = os.environ.get("CKPT_SELF_RESTORE")
    if not path:
        return default
    state = load(path)
    _send("restored")
    return state


class CheckpointFailed(Exception):
    pass


def checkpoint(save):
    """Asks ckpt for a checkpoint now (in a job: every rank calls it); save(path) writes
    the whole state to path. Returns the snapshot's sequence number (None when a job's
    checkpoint took none here), or raises CheckpointFailed."""
    _send("checkpoint")
    return serve(save)


def safepoint(save):
    """In a job's rank: a point where a coordinated checkpoint may stop this rank (call
    it as often, and as many times, on every rank: say each iteration). Returns the
    snapshot's sequence number when one was taken here, else None."""
    _send("safepoint")
    return serve(save)


def serve(save):
    """Answers one checkpoint: a `save` request, then its outcome (also for checkpoints
    triggered from outside, when the control descriptor is readable)."""
    while True:
        line = _recv()
        if line.startswith("save "):
            try:
                save(line[5:])
            except Exception as e:  # the checkpoint is aborted; the program goes on
                _send("error " + str(e).replace("\n", " "))
            else:
                _send("saved")
        elif line.startswith("continue "):
            return int(line.split()[1])
        elif line == "go":
            return None
        elif line.startswith("failed "):
            raise CheckpointFailed(line[7:])


def pending():
    """True when ckpt has sent a request (an outside trigger): call serve(save) then."""
    import select
    return bool(select.select([_control()], [], [], 0)[0])
