"""PyTorch peer of bench/gpt2.ts: the plain-PyTorch GPT-2 of experiments/gpt2/torch_gpt2.py (KV cache, float32,
TORCH_THREADS threads, default 1) on a Hugging Face folder. Prints JSON: prompt forward seconds (all logits) and
per-token decode seconds (one new token with the cache + argmax), each as a list of repeats."""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments", "gpt2"))
from torch_gpt2 import GPT2, load_folder  # noqa: E402

d, prompt_len, new_tokens, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cfg, sd = load_folder(d)
model = GPT2(cfg, sd)
g = torch.Generator().manual_seed(0)
prompt = torch.randint(0, cfg["vocab_size"], (prompt_len,), generator=g)
model.forward(prompt)  # warm-up
prompt_s, token_s = [], []
for _ in range(repeats):
    t = time.perf_counter()
    logits, past = model.forward(prompt)
    prompt_s.append(time.perf_counter() - t)
    tok = int(torch.argmax(logits[-1]))
    t = time.perf_counter()
    for _ in range(new_tokens):
        logits, past = model.forward(torch.tensor([tok]), past)
        tok = int(torch.argmax(logits[-1]))
    token_s.append((time.perf_counter() - t) / new_tokens)
print(json.dumps({"prompt_s": prompt_s, "token_s": token_s, "torch": torch.__version__, "threads": torch.get_num_threads()}))
