# A rank of a parallel job in Python, checkpointed by ckpt's `self` checkpointer
# through the language-neutral protocol. Each iteration is a safe point: a coordinated
# checkpoint (`ckpt checkpoint JOB`, `--interval`) stops every rank at the same one.
#
#   ckpt run -n 4 --crs self --name sim --dir snaps -- ckpt-self -- python3 examples/rank.py
#   ckpt checkpoint sim --term ; ckpt restart snaps
#
# CKPT_RANK and CKPT_SIZE say which rank this is. Restarted, a rank runs 5 more
# iterations and ends (ITERATIONS=N: end at N instead).
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_self  # noqa: E402

rank = int(os.environ.get("CKPT_RANK", "0"))
state = ckpt_self.restore(default=None, load=lambda path: json.load(open(path)))
if state is None:
    state = {"rank": rank, "i": 0}
    limit = int(os.environ.get("ITERATIONS", "1000000000"))
    print(f"ready {rank}", flush=True)
else:
    assert state["rank"] == rank, "a rank restarts from its own state"
    limit = state["i"] + 5
    print(f"rank {rank} restored at {state['i']}", flush=True)


def save(path):
    ckpt_self.write_private(path, json.dumps(state).encode())


while state["i"] < limit:
    seq = ckpt_self.safepoint(save)
    if seq is not None:
        print(f"rank {rank} checkpoint {seq} at {state['i']}", flush=True)
    state["i"] += 1
    time.sleep(0.005)
print(f"rank {rank} done at {state['i']}", flush=True)
