# The counter of examples/counter.mjs, in Python, through ckpt's language-neutral
# self-checkpoint protocol: it counts, asks for a checkpoint at 5, and — restarted
# from that snapshot — loads its counter and counts on.
#
#   ckpt-self --dir STORE -- python3 examples/counter.py      (then kill it, and:)
#   ckpt restart STORE
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_self  # noqa: E402

state = ckpt_self.restore(default={"counter": 0}, load=lambda path: json.load(open(path)))
restarted = state["counter"] > 0
if restarted:
    print(f"restarted at counter {state['counter']}", flush=True)


def save(path):
    ckpt_self.write_private(path, json.dumps(state).encode())


while state["counter"] < 10:
    if state["counter"] == 5 and not restarted:
        seq = ckpt_self.checkpoint(save)
        print(f"checkpoint {seq} at counter {state['counter']}", flush=True)
        print("waiting to be killed…", flush=True)
        while True:
            time.sleep(3600)
    state["counter"] += 1
    print(f"count {state['counter']}", flush=True)
    time.sleep(float(os.environ.get("COUNTER_DELAY", "0.1")))
print("done", flush=True)
