"""PyTorch side of fhenet's GPT-2 parity check: reads a request JSON {model, prompts, new_tokens, logits_out},
writes the float32 logits of every prompt (concatenated, [sum(len), vocab]) to logits_out and prints
{"greedy": [[ids]...], "seconds": s} as JSON. Run by experiments/gpt2/torch-check.ts with Debian's python3-torch."""
import json
import sys
import time

import numpy as np
import torch

from torch_gpt2 import GPT2, load_folder

req = json.load(open(sys.argv[1]))
cfg, sd = load_folder(req["model"])
model = GPT2(cfg, sd)
t0 = time.time()
all_logits = []
greedy = []
for ids in req["prompts"]:
    logits, _ = model.forward(torch.tensor(ids))
    all_logits.append(logits.numpy().astype(np.float32))
    greedy.append(model.greedy(ids, req["new_tokens"]))
np.concatenate(all_logits, axis=0).tofile(req["logits_out"])
print(json.dumps({"greedy": greedy, "seconds": time.time() - t0, "torch": torch.__version__}))
