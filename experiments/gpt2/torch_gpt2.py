"""A GPT-2 forward pass in plain PyTorch, written for fhenet's parity check (experiments/gpt2/torch-check.ts).

It does not use fhenet or transformers: it reads a Hugging Face GPT-2 folder (config.json + model.safetensors or
sharded) with json + numpy, and implements the published GPT-2 computation: token + position embeddings, per block
x + attn(ln_1(x)), x + mlp(ln_2(x)) with Conv1D weights stored [in, out], gelu_new (tanh form), causal softmax
attention with scores / sqrt(head_dim), final ln_f, logits = h @ wte^T (tied) or lm_head.
"""
import json
import math
import os

import numpy as np
import torch

torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = data[a:b]
        dt = e["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {dt}")
        out[name] = torch.from_numpy(arr.copy().reshape(e["shape"]))
    return out


def load_folder(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        sd = read_safetensors(single)
    else:
        index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
        sd = {}
        for shard in sorted(set(index["weight_map"].values())):
            sd.update(read_safetensors(os.path.join(d, shard)))
    sd = {(k[len("transformer."):] if k.startswith("transformer.") else k): v for k, v in sd.items()}
    return cfg, sd


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2:
    def __init__(self, cfg, sd):
        self.cfg = cfg
        self.sd = sd
        self.n_head = cfg["n_head"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        assert cfg.get("activation_function", "gelu_new") in ("gelu_new", "gelu_pytorch_tanh")
        self.lm_head = sd["wte.weight"] if cfg.get("tie_word_embeddings", True) else sd["lm_head.weight"]

    def ln(self, x, p):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.sd[p + ".weight"], self.sd[p + ".bias"], self.eps)

    def conv1d(self, x, p):
        return x @ self.sd[p + ".weight"] + self.sd[p + ".bias"]

    @torch.no_grad()
    def forward(self, ids, past=None):
        """ids: [T] LongTensor. past: list of (k, v) [heads, P, d]. Returns logits [T, V] and the new past."""
        P = 0 if past is None else past[0][0].shape[1]
        T = ids.shape[0]
        pos = torch.arange(P, P + T)
        x = self.sd["wte.weight"][ids] + self.sd["wpe.weight"][pos]
        E = x.shape[-1]
        H = self.n_head
        d = E // H
        presents = []
        for i in range(self.cfg["n_layer"]):
            p = f"h.{i}"
            qkv = self.conv1d(self.ln(x, p + ".ln_1"), p + ".attn.c_attn")
            q, k, v = qkv.split(E, dim=-1)
            q, k, v = (t.view(T, H, d).transpose(0, 1) for t in (q, k, v))
            if past is not None:
                k = torch.cat([past[i][0], k], dim=1)
                v = torch.cat([past[i][1], v], dim=1)
            presents.append((k, v))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d)
            allowed = torch.arange(P + T)[None, :] <= (P + torch.arange(T))[:, None]
            scores = scores.masked_fill(~allowed, float("-inf"))
            a = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(T, E)
            x = x + self.conv1d(a, p + ".attn.c_proj")
            m = self.conv1d(gelu_new(self.conv1d(self.ln(x, p + ".ln_2"), p + ".mlp.c_fc")), p + ".mlp.c_proj")
            x = x + m
        h = self.ln(x, "ln_f")
        return h @ self.lm_head.T, presents

    def greedy(self, ids, n):
        logits, past = self.forward(torch.tensor(ids))
        out = []
        for _ in range(n):
            t = int(torch.argmax(logits[-1]))
            out.append(t)
            logits, past = self.forward(torch.tensor([t]), past)
        return out
