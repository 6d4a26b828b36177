"""Clear float32 peer for bench/glwe.ts: PyTorch matrix-vector products of the given shapes on one thread.

    /usr/bin/python3 bench/glwe-torch.py 768x768 2304x768 ...   # Debian python3-torch; prints JSON {shape: ms}
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
out = {}
for shape in sys.argv[1:]:
    d_out, d_in = (int(v) for v in shape.split("x"))
    w = torch.randn(d_out, d_in)
    x = torch.randn(d_in)
    for _ in range(3):
        torch.mv(w, x)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        torch.mv(w, x)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    out[shape] = times[len(times) // 2]
print(json.dumps(out))
