"""Independent PyTorch check of the guide's QuantSimpleNet with Brevitas's default quantizers.

Not part of fhenet (nothing imports it, CI does not run it). It answers one question the TypeScript runs could not:
does a PyTorch implementation of the same quantizer semantics reach the guide's 95.4 % (k = 30, 3 bits), or does it
stall on the misaligned learned input grid as fhenet does?

Brevitas itself cannot be installed here (no PyPI), so its default quantizers are written out below from their
documented behaviour (Brevitas 0.10/0.11, brevitas/quant/scaled_int.py and brevitas/core/scaling/runtime.py):
- input QuantIdentity(bit_width=3, act_quant=Int8ActPerTensorFloat): signed, not narrow (integers [-4, 3]),
  scale = value / 4, where value starts as an exponential moving average (momentum 0.1, first batch as is) of the
  99.999th percentile of |x| over the first 300 training forwards (during which the batch's own statistic is used),
  and is a learned parameter afterwards, floored at 1e-10 with |.| taking sign(0) = +1 in its gradient;
- QuantReLU(bit_width=3): Uint8ActPerTensorFloat, the same scaling on the ReLU output, integers [0, 7], scale = value / 7;
- QuantLinear(weight_bit_width=3, weight_quant=Int8WeightPerTensorFloat, narrow): scale = max|W| / 3 recomputed
  every forward (gradient through the max), integers [-3, 3], weight clamp straight-through; float bias.
Rounding is straight-through round-half-even; the activation clamp has zero gradient outside the range.
Pruning: torch.nn.utils.prune.l1_unstructured with amount (in - k) * out on every layer with in > k (the guide).
Training: the reference's AdamW, lr 1e-3, batch 1, 7 epochs, cross-entropy, shuffled (torch.manual_seed(seed)).
Data: the peer arrays (shared/fixtures/brevitas/checkerboard.json), the exact data of the reference runs.

Run (Debian's python3-torch; 10 seeds ≈ 25 min on one core):
  /usr/bin/python3 experiments/checkerboard/torch-check/brevitas_default.py --seeds 0 1 2 3 4 5 6 7 8 9 > default-k30-batch1.jsonl
  /usr/bin/python3 experiments/checkerboard/torch-check/brevitas_default.py --quantizers notebook --seeds 0 1 2 3 4 5 6 7 8 9 > notebook-k30-batch1.jsonl
Writes one JSON line per seed (accuracy, the learned input scale over training) to stdout.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune


class RoundSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)  # half to even, as Brevitas's ROUND

    @staticmethod
    def backward(ctx, g):
        return g


class AbsSignGrad(torch.autograd.Function):
    """|x| whose gradient uses sign(0) = +1 (Brevitas's abs_binary_sign_grad)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class ClampSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        return torch.clamp(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        return g, None, None


def percentile_abs(x, q=99.999):
    flat = x.detach().abs().flatten()
    k = max(1, min(flat.numel(), int(math.floor(q / 100.0 * flat.numel() + 0.5))))
    return flat.kthvalue(k).values


class RuntimeStatsActQuant(nn.Module):
    """Int8ActPerTensorFloat (signed) / Uint8ActPerTensorFloat (unsigned) at a given bit width."""

    def __init__(self, bits, signed, collect_steps=300, momentum=0.1):
        super().__init__()
        self.lo = -(2 ** (bits - 1)) if signed else 0
        self.hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
        self.threshold = float(-self.lo if signed else self.hi)
        self.collect_steps, self.momentum, self.counter = collect_steps, momentum, 0
        self.register_buffer("buffer", torch.tensor(1.0))
        self.value = nn.Parameter(torch.tensor(1.0))

    def scale_value(self, x):
        if self.training and self.counter < self.collect_steps:
            stat = percentile_abs(x)
            if self.counter == 0:
                self.buffer.copy_(stat)
            else:
                self.buffer.mul_(1 - self.momentum).add_(self.momentum * stat)
            self.counter += 1
            return stat + 0.0 * self.value
        if self.training and self.counter == self.collect_steps:
            with torch.no_grad():
                self.value.copy_(self.buffer)
            self.counter += 1
        v = self.value if self.counter > self.collect_steps else self.buffer
        return AbsSignGrad.apply(torch.clamp(v, min=1e-10))

    def forward(self, x):
        s = self.scale_value(x) / self.threshold
        q = torch.clamp(RoundSte.apply(x / s), self.lo, self.hi)  # zero gradient outside the range
        return q * s


class QuantLinearAbsMax(nn.Linear):
    """QuantLinear with Int8WeightPerTensorFloat at `bits` (narrow): scale = max|W| / (2^(bits-1) - 1)."""

    def __init__(self, fin, fout, bits):
        super().__init__(fin, fout, bias=True)
        self.m = 2 ** (bits - 1) - 1

    def quant_weight(self):
        w = self.weight  # weight_orig * mask once pruned
        s = torch.clamp(w.abs().max(), min=1e-10) / self.m
        return ClampSte.apply(RoundSte.apply(w / s), -self.m, self.m) * s, s

    def forward(self, x):
        w, _ = self.quant_weight()
        return F.linear(x, w, self.bias)


class ConstActQuant(nn.Module):
    """The notebook's CommonActQuant: signed, narrow, constant scale max_val / (2^(bits-1) - 1)."""

    def __init__(self, bits, max_val=1.0):
        super().__init__()
        self.m = 2 ** (bits - 1) - 1
        self.threshold = float(self.m)
        self.value = torch.tensor(max_val)
        self.counter = self.collect_steps = 0

    def forward(self, x):
        s = float(self.value) / self.m
        return torch.clamp(RoundSte.apply(x / s), -self.m, self.m) * s


class QuantLinearConst(QuantLinearAbsMax):
    """The notebook's CommonWeightQuant: constant scale 1 / (2^(bits-1) - 1), weights clamped to [-1, 1] in effect."""

    def quant_weight(self):
        s = torch.tensor(1.0 / self.m)
        return ClampSte.apply(RoundSte.apply(self.weight / s), -self.m, self.m) * s, s


class QuantSimpleNet(nn.Module):
    def __init__(self, hidden, bits=3, quantizers="default"):
        super().__init__()
        notebook = quantizers == "notebook"
        self.quant_inp = ConstActQuant(bits) if notebook else RuntimeStatsActQuant(bits, signed=True)
        Lin = QuantLinearConst if notebook else QuantLinearAbsMax
        self.fc1 = Lin(2, hidden, bits)
        self.relu1 = RuntimeStatsActQuant(bits, signed=False)
        self.fc2 = Lin(hidden, hidden, bits)
        self.relu2 = RuntimeStatsActQuant(bits, signed=False)
        self.fc3 = Lin(hidden, 2, bits)
        for m in (self.fc1, self.fc2, self.fc3):
            nn.init.uniform_(m.weight, -1, 1)

    def forward(self, x):
        x = self.quant_inp(x)
        x = self.relu1(F.relu(self.fc1(x)))
        x = self.relu2(F.relu(self.fc2(x)))
        return self.fc3(x)

    def input_scale(self):
        q = self.quant_inp
        v = q.value if q.counter > q.collect_steps or isinstance(q, ConstActQuant) else q.buffer
        return float(v.abs()) / q.threshold


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--quantizers", choices=["default", "notebook"], default="default",
                    help="default: the guide's Brevitas defaults; notebook: the notebook's constant-scale quantizers (harness check)")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../../shared/fixtures/brevitas/checkerboard.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    d = json.load(open(a.data))
    xtr = torch.tensor(d["X_train"], dtype=torch.float32)
    ytr = torch.tensor(d["y_train"], dtype=torch.long)
    xte = torch.tensor(d["X_test"], dtype=torch.float32)
    yte = torch.tensor(d["y_test"], dtype=torch.long)
    for seed in a.seeds:
        t0 = time.time()
        torch.manual_seed(seed)
        net = QuantSimpleNet(a.hidden, quantizers=a.quantizers)
        for m in (net.fc1, net.fc2, net.fc3):
            if m.in_features > a.k:
                prune.l1_unstructured(m, "weight", amount=(m.in_features - a.k) * m.out_features)
        opt = torch.optim.AdamW(net.parameters(), lr=a.lr)
        scales = []
        for epoch in range(a.epochs):
            net.train()
            perm = torch.randperm(len(xtr))
            for i in range(0, len(xtr), a.batch):
                idx = perm[i : i + a.batch]
                loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            scales.append(round(net.input_scale(), 5))
        for m in (net.fc1, net.fc2, net.fc3):
            if prune.is_pruned(m):
                prune.remove(m, "weight")
        net.eval()
        with torch.no_grad():
            test = (net(xte).argmax(1) == yte).float().mean().item()
            train = (net(xtr).argmax(1) == ytr).float().mean().item()
            # accumulator: max |sum w_int * x_int| per layer (bias excluded), as fhenet and Concrete ML count it
            acc_bits = 0
            x = xtr
            for lin, q_in in ((net.fc1, net.quant_inp), (net.fc2, net.relu1), (net.fc3, net.relu2)):
                xin = q_in(x if lin is net.fc1 else x)
                s_in = float(q_in.value.abs()) / q_in.threshold
                w, s_w = lin.quant_weight()
                acc = torch.round(xin / s_in) @ torch.round(w / s_w).T
                lo, hi = int(acc.min()), int(acc.max())
                bits = max(1, math.ceil(math.log2(max(hi + 1, -lo, 1))) + 1)
                acc_bits = max(acc_bits, bits)
                x = F.relu(lin(xin))
        print(json.dumps({"quantizers": a.quantizers, "seed": seed, "k": a.k, "batch": a.batch, "lr": a.lr, "epochs": a.epochs, "test": round(test, 4),
                          "train": round(train, 4), "accumulator_bits": acc_bits, "input_scale_per_epoch": scales,
                          "relu_scales": [round(float(net.relu1.value.abs()) / 7, 5), round(float(net.relu2.value.abs()) / 7, 5)],
                          "s": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
