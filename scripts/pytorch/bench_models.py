#!/usr/bin/env python3
"""PyTorch's side of reslab's training benchmarks: the bench models, trained on the CPU, bare
and instrumented, so that `reslab bench` can be put beside PyTorch on the same machine and the
same work.

What it measures: training throughput (samples/s and ms/step) of each model on one random
batch reused every step (inputs N(0, 1), random labels over 10 classes), batch 128, SGD with
momentum 0.9 and lr 0.05, cross-entropy; 3 warm-up steps, then the timed steps. Modes:
  bare          the model alone;
  instrumented  what reslab's probes compute on every step, done the PyTorch way: forward hooks
                that reduce every Linear/Conv/norm output to mean, std, min, max, fraction <= 0
                and a 32-bin histogram, per-parameter gradient norms, BN running statistics, all
                read back to the host each step;
  compiled      (with --compile) the bare model under torch.compile (inductor; needs a C++
                compiler), a practitioner's faster option.

The models (the shapes of src/cli/bench.rs and the src/spec presets; `reslab bench` trains the
first four, the others are PyTorch-only comparisons until the lab has them):
  mlp-plain-20       Linear(784 -> 128) -> ReLU, 20 x [Linear(128, 128) -> ReLU], Linear(128 -> 10);
                     no BN (as `reslab bench`'s mlp-plain-20)
  mlp-res-20         Linear(784 -> 128) -> ReLU, 20 x [Linear -> BN -> (+x) -> ReLU], head
  cifar-plain-20     He et al. 2016's CIFAR net, n = 3 (20 layers), 3x32x32 input: 3x3 conv 16
                     -> BN -> ReLU, three stages of 3 basic blocks (16/32/64 channels, stride 2
                     at the start of stages 2 and 3), no shortcuts, global average pool, head;
                     convolutions without bias
  cifar-resnet-20    the same with shortcuts: identity, a 1x1 conv (stride 2) + BN where the
                     shape changes (He et al.'s option B, the presets' default)
  cifar-resnet-20-gn / -ln   the same with GroupNorm (8 groups) / LayerNorm over (C, H, W)
                     (GroupNorm with one group) in place of every BN
  vit-res-12         pre-LN transformer encoder on 7x7 patches of 1x28x28 (16 tokens, d 64,
                     4 heads, MLP 128, GELU), 12 blocks x + Attn(LN(x)), x + MLP(LN(x)), LN,
                     mean pool, head
  vit-plain-12       the same without the two residual adds

Usage (torch in a virtualenv; the output is what bench/side_by_side.sh parses):
  python3 scripts/pytorch/bench_models.py [--threads 2] [--models mlp-res-20,...] [--steps N]
      [--batch 128] [--compile] [--list]
Prints "torch <version>, <n> threads", then one line per (model, mode):
  "<model> <bare|instrumented|compiled>: <samples/s> samples/s, <ms> ms/step, warm-up <s> s"
(the untimed warm-up steps; for compiled, torch.compile's compilation is in them).
--steps 0 (the default) means 50 timed steps for MLPs and ViTs, 8 for CIFAR nets, as
`reslab bench`. bench/pytorch_gpu.py imports MODELS and instrument() from this file to train the
same models on a GPU.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def norm2d(kind, channels):
    """The normalisation of a CIFAR net: BatchNorm ("bn", He et al.), GroupNorm with 8 groups
    ("gn", Wu & He 2018; fewer than their 32 because these nets have 16-64 channels) or
    LayerNorm over (C, H, W) ("ln", GroupNorm with one group)."""
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(8, channels)
    if kind == "ln":
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown normalisation {kind}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions, each followed by the normalisation, ReLU after the first and after
    the sum; the shortcut (when `residual`) is the identity or a 1x1 projection + norm."""

    def __init__(self, cin, cout, stride, residual=True, norm="bn"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = norm2d(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = norm2d(norm, cout)
        self.residual = residual
        self.project = None
        if residual and (stride != 1 or cin != cout):
            self.project = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         norm2d(norm, cout))

    def forward(self, x):
        out = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))
        if self.residual:
            out = out + (x if self.project is None else self.project(x))
        return F.relu(out)


class CifarNet(nn.Module):
    """He et al. 2016's CIFAR network with `n` blocks per stage (depth 6n + 2)."""

    def __init__(self, n, residual=True, in_channels=3, norm="bn"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False),
                                  norm2d(norm, 16), nn.ReLU())
        blocks, channels = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(n):
                stride = 2 if (b == 0 and stage > 0) else 1
                blocks.append(BasicBlock(channels, width, stride, residual, norm))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class Mlp(nn.Module):
    """Linear(inputs -> width) -> ReLU, `depth` blocks Linear -> [BN] -> [(+x)] -> ReLU, head."""

    def __init__(self, inputs, width, depth, residual, batch_norm, classes=10):
        super().__init__()
        self.inp = nn.Linear(inputs, width)
        self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.bns = nn.ModuleList([nn.BatchNorm1d(width) if batch_norm else nn.Identity()
                                  for _ in range(depth)])
        self.residual = residual
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = F.relu(self.inp(x))
        for fc, bn in zip(self.fcs, self.bns):
            y = bn(fc(x))
            x = F.relu(y + x) if self.residual else F.relu(y)
        return self.head(x)


class Attention(nn.Module):
    """Multi-head self-attention with one fused QKV projection."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(b, t, d))


class Vit(nn.Module):
    """Pre-LN transformer encoder on non-overlapping `patch` x `patch` patches of a 1x28x28
    image: x + Attn(LN(x)), x + MLP(LN(x)) per block (`residual=False` drops both adds)."""

    def __init__(self, depth, d=64, heads=4, mlp=128, patch=7, residual=True):
        super().__init__()
        self.patch, self.residual = patch, residual
        self.embed = nn.Linear(patch * patch, d)
        self.pos = nn.Parameter(torch.zeros(1, (28 // patch) ** 2, d))
        self.ln1 = nn.ModuleList([nn.LayerNorm(d) for _ in range(depth)])
        self.attn = nn.ModuleList([Attention(d, heads) for _ in range(depth)])
        self.ln2 = nn.ModuleList([nn.LayerNorm(d) for _ in range(depth)])
        self.mlp = nn.ModuleList([nn.Sequential(nn.Linear(d, mlp), nn.GELU(), nn.Linear(mlp, d))
                                  for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        p = self.patch
        x = x.unfold(2, p, p).unfold(3, p, p).reshape(x.shape[0], -1, p * p)
        x = self.embed(x) + self.pos
        for ln1, attn, ln2, mlp in zip(self.ln1, self.attn, self.ln2, self.mlp):
            a = attn(ln1(x))
            x = x + a if self.residual else a
            m = mlp(ln2(x))
            x = x + m if self.residual else m
        return self.head(self.norm(x).mean(1))


# name -> (constructor, shape of one input sample)
MODELS = {
    "mlp-plain-20": (lambda: Mlp(784, 128, 20, residual=False, batch_norm=False), (784,)),
    "mlp-res-20": (lambda: Mlp(784, 128, 20, residual=True, batch_norm=True), (784,)),
    "cifar-plain-20": (lambda: CifarNet(3, residual=False), (3, 32, 32)),
    "cifar-resnet-20": (lambda: CifarNet(3, residual=True), (3, 32, 32)),
    "cifar-resnet-20-gn": (lambda: CifarNet(3, residual=True, norm="gn"), (3, 32, 32)),
    "cifar-resnet-20-ln": (lambda: CifarNet(3, residual=True, norm="ln"), (3, 32, 32)),
    "vit-res-12": (lambda: Vit(12, residual=True), (1, 28, 28)),
    "vit-plain-12": (lambda: Vit(12, residual=False), (1, 28, 28)),
}

MEASURED = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def instrument(model):
    """Registers forward hooks that reduce every Linear/Conv/norm output to the lab's layer
    statistics (mean, std, min, max, fraction <= 0, 32-bin histogram). Returns the list the
    hooks append to; the caller reads it back and clears it every step."""
    stats = []

    def hook(_module, _inputs, out):
        o = out.detach()
        stats.append(torch.stack([o.mean(), o.std(), o.min(), o.max(), (o <= 0).float().mean()]))
        stats.append(torch.histc(o, bins=32))

    for m in model.modules():
        if isinstance(m, MEASURED):
            m.register_forward_hook(hook)
    return stats


def read_back(model, stats):
    """What the lab reads back on a probe step: the layer statistics, every parameter's gradient
    norm and the BN running statistics, as host values. Clears `stats`."""
    grad_norms = torch.stack([p.grad.norm() for p in model.parameters()])
    running = [(m.running_mean, m.running_var) for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    _ = ([s.tolist() for s in stats], grad_norms.tolist(),
         [(a.tolist(), b.tolist()) for a, b in running])
    stats.clear()


def bench(name, instrumented, steps, batch, compiled=False, warm=3):
    """Times `steps` training steps of `name` after `warm` untimed ones; prints one line."""
    torch.manual_seed(0)
    make, shape = MODELS[name]
    model = make()
    stats = instrument(model) if instrumented else None
    run = torch.compile(model) if compiled else model
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    began = time.perf_counter()
    for i in range(warm + steps):
        if i == warm:
            start = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(run(x), y)
        loss.backward()
        if instrumented:
            read_back(model, stats)
        opt.step()
        loss.item()
    dt = (time.perf_counter() - start) / steps
    mode = "instrumented" if instrumented else ("compiled" if compiled else "bare")
    # The warm-up steps, compilation included for torch.compile: reported, never timed.
    print(f"{name} {mode}: {batch / dt:.0f} samples/s, {dt * 1e3:.1f} ms/step, "
          f"warm-up {start - began:.1f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    ap.add_argument("--steps", type=int, default=0,
                    help="timed steps; 0: 50 for MLPs and ViTs, 8 for CIFAR nets")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--compile", action="store_true",
                    help="also time the bare model under torch.compile (needs a C++ compiler)")
    ap.add_argument("--list", action="store_true",
                    help="print each model's name, parameter count and input shape, and stop")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = a.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    if a.list:
        for name in names:
            make, shape = MODELS[name]
            params = sum(p.numel() for p in make().parameters())
            print(f"{name} {params} parameters, input {'x'.join(map(str, shape))}")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in names:
        steps = a.steps or (8 if name.startswith("cifar") else 50)
        for instrumented in (False, True):
            bench(name, instrumented, steps, a.batch)
        if a.compile:
            bench(name, False, steps, a.batch, compiled=True)


if __name__ == "__main__":
    main()
