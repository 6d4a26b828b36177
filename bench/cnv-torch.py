"""Independent check: the CNV training step in PyTorch on this machine (not a dependency of fhenet).

    /usr/bin/python3 bench/cnv-torch.py            # Debian's python3-torch (apt-get install python3-torch)

Times one step (forward + backward + Adam, batch 100, random 32x32x3 images) of
  float: CNV's convolutions/BatchNorms/pools with ReLU, no quantizers (same net as the bench's `cnv-float` row);
  qat:   the same with 2-bit fake quantization of weights and activations ({-1, 0, 1}, straight-through round,
         constant scale 1) and an 8-bit power-of-two input quantizer -- written here in plain torch (no Brevitas).
Median of timed steps after warm-up, at 1 and 2 threads; prints a Markdown table.
"""
import statistics
import sys
import time

import torch
import torch.nn as nn


class RoundSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def fake_quant(x, lo, hi, scale, ste_clamp):
    q = RoundSte.apply(x / scale)
    q = torch.clamp(q, lo, hi) if not ste_clamp else q + (torch.clamp(q, lo, hi) - q).detach()
    return q * scale


class Act(nn.Module):
    def __init__(self, quant, bits=2):
        super().__init__()
        self.quant = quant
        self.bits = bits

    def forward(self, x):
        if not self.quant:
            return torch.relu(x)
        if self.bits == 8:
            return fake_quant(x, -128, 127, 1 / 128, False)
        return fake_quant(x, -1, 1, 1.0, False)


class QConv(nn.Conv2d):
    def __init__(self, cin, cout, quant):
        super().__init__(cin, cout, 3, bias=False)
        self.quant = quant

    def forward(self, x):
        w = fake_quant(self.weight, -1, 1, 1.0, True) if self.quant else self.weight
        return nn.functional.conv2d(x, w)


class QLinear(nn.Linear):
    def __init__(self, fin, fout, quant):
        super().__init__(fin, fout, bias=False)
        self.quant = quant

    def forward(self, x):
        w = fake_quant(self.weight, -1, 1, 1.0, True) if self.quant else self.weight
        return nn.functional.linear(x, w)


def cnv(quant):
    layers = [Act(quant, 8)] if quant else []
    cin = 3
    for i, c in enumerate([64, 64, 128, 128, 256, 256]):
        layers += [QConv(cin, c, quant), nn.BatchNorm2d(c, eps=1e-4), Act(quant)]
        if i in (1, 3):
            layers += [nn.AvgPool2d(2)] + ([Act(quant)] if quant else [])
        cin = c
    layers += [nn.Flatten()]
    for fin, fout in [(256, 512), (512, 512)]:
        layers += [QLinear(fin, fout, quant), nn.BatchNorm1d(fout, eps=1e-4), Act(quant)]
    layers += [QLinear(512, 10, quant), nn.BatchNorm1d(10, eps=1e-4)]
    return nn.Sequential(*layers)


def measure(quant, threads, batch=100, warm=2, steps=6):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = cnv(quant)
    opt = torch.optim.Adam(model.parameters(), lr=0.02 if quant else 1e-3)
    x = torch.rand(batch, 3, 32, 32) * 2 - 1
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for i in range(warm + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if i >= warm:
            times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    return ms, batch * 1000 / ms


if __name__ == "__main__":
    print(f"torch {torch.__version__}, python {sys.version.split()[0]}")
    print("| net | threads | ms/step | images/s |")
    print("|---|---|---|---|")
    for quant in (False, True):
        for threads in (1, 2):
            ms, ips = measure(quant, threads)
            print(f"| {'cnv-qat (fake-quant)' if quant else 'cnv-float'} | {threads} | {ms:.1f} | {ips:.1f} |", flush=True)
