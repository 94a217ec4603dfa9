#!/usr/bin/env python3
"""De & Smith 2020 in PyTorch, the networks of reslab's `init-variance` experiment
(src/experiments/init_variance.rs): residual blocks at initialisation, and SkipInit in training.

What it measures:
1. At initialisation (always): the mean squared activation (MSA) of the block outputs
   x_0..x_20 and of the residual branches f_1..f_20 of 20 blocks of width 256 on a batch of 256
   inputs from N(0, I), He-normal weights, zero biases, BN in training mode (batch statistics):
     residual    x_(l+1) = x_l + Linear(ReLU(x_l))          expect log2(MSA_20 / MSA_0) in [18, 22]
     residual BN x_(l+1) = x_l + Linear(ReLU(BN(x_l)))      expect branch MSA in [0.8, 1.2] and
                                                            MSA_l / (l + MSA_0) in [0.8, 1.2]
     SkipInit    x_(l+1) = x_l + alpha * Linear(ReLU(x_l)), alpha = 0   expect MSA_l = MSA_0
     plain       x_(l+1) = Linear(ReLU(x_l))                (shown, not judged)
   The ranges are the lab's criteria. --branch-layers 2 uses the older PyTorch reference's branch
   of two Linear layers, Linear(ReLU([BN](Linear(ReLU([BN](x)))))), which the "PyTorch" column of
   EXPERIMENTS_NOTES.md was first measured with.
2. With --train: the training claim on MNIST-10k (assets/mnist10k of this repository):
   Linear(784 -> 64), 64 such blocks of width 64, ReLU, head; SGD momentum 0.9, lr 0.05, batch
   128, 400 steps, in the lab's data setup (scripts/pytorch/common.py). Variants: alpha = 1
   without normalisation (expected to diverge), SkipInit (a learnable scalar alpha per block from
   0) and BN in the branch. Final loss = mean of the last 50 batch losses; a run diverges when a
   loss or gradient turns non-finite or its final loss exceeds 10. The lab passes SkipInit when
   no seed diverges and its mean final loss <= 1.5 x BN's + 0.05.

Usage (torch and numpy in a virtualenv, never needed by CI):
  python3 scripts/pytorch/init_variance.py [--seeds 0-2]                # at init only, seconds
  python3 scripts/pytorch/init_variance.py --train [--seeds 0-2]        # + training, minutes
  python3 scripts/pytorch/init_variance.py --train --blocks 16 --steps 100 --seeds 0   # smaller
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

WIDTH, BLOCKS, BATCH = 256, 20, 256
VARIANTS = ["residual", "residual BN", "SkipInit", "plain"]


def batch_norm(z):
    """BN in training mode at init (gamma 1, beta 0): the batch's mean and biased variance."""
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)


@torch.no_grad()
def profile(variant, seed, branch_layers=1):
    """(MSA of x_0..x_20, MSA of f_1..f_20) of one variant at initialisation."""
    torch.manual_seed(seed)
    x = torch.randn(BATCH, WIDTH)
    layers = [[common.he_(nn.Linear(WIDTH, WIDTH)) for _ in range(branch_layers)]
              for _ in range(BLOCKS)]
    skip, branch = [x.pow(2).mean().item()], []
    for block in layers:
        f = x
        for linear in block:
            f = linear(F.relu(batch_norm(f) if variant == "residual BN" else f))
        if variant == "SkipInit":
            f = 0.0 * f
        x = f if variant == "plain" else x + f
        branch.append(f.pow(2).mean().item())
        skip.append(x.pow(2).mean().item())
    return skip, branch


def at_init(seeds, branch_layers):
    print(f"== at initialisation: width {WIDTH}, {BLOCKS} blocks, batch {BATCH}, "
          f"{branch_layers} Linear layer(s) per branch")
    profiles = {v: [profile(v, s, branch_layers) for s in seeds] for v in VARIANTS}
    ratios = [math.log2(m[-1] / m[0]) for m, _ in profiles["residual"]]
    print("residual: log2(MSA_20 / MSA_0) per seed " + ", ".join(f"{r:.2f}" for r in ratios)
          + f"  (lab's range [18, 22]: {'in' if all(18 <= r <= 22 for r in ratios) else 'OUT'})")
    branch = [b for _, bs in profiles["residual BN"] for b in bs]
    rel = [m[l] / (l + m[0]) for m, _ in profiles["residual BN"] for l in range(BLOCKS + 1)]
    print(f"residual BN: branch MSA in [{min(branch):.3f}, {max(branch):.3f}], "
          f"MSA_l / (l + MSA_0) in [{min(rel):.3f}, {max(rel):.3f}]  (lab's range [0.8, 1.2]: "
          f"{'in' if min(branch) >= 0.8 and max(branch) <= 1.2 and min(rel) >= 0.8 and max(rel) <= 1.2 else 'OUT'})")
    drift = max(abs(math.log2(v / m[0])) for m, _ in profiles["SkipInit"] for v in m)
    print(f"SkipInit: max |log2(MSA_l / MSA_0)| {drift:.2g}")
    plain = [math.log2(m[-1] / m[0]) for m, _ in profiles["plain"]]
    print("plain: log2(MSA_20 / MSA_0) per seed " + ", ".join(f"{r:.2f}" for r in plain))


class ResMlp(nn.Module):
    """The trained net: Linear(784 -> width), `blocks` x [x + alpha * Linear(ReLU([BN](x)))]
    (no skip for plain), ReLU, head; alpha is 1, or a learnable scalar from 0 for SkipInit."""

    def __init__(self, variant, blocks, width=64):
        super().__init__()
        self.variant = variant
        self.stem = common.he_(nn.Linear(784, width))
        self.bns = nn.ModuleList([nn.BatchNorm1d(width) if variant == "residual BN"
                                  else nn.Identity() for _ in range(blocks)])
        self.fcs = nn.ModuleList([common.he_(nn.Linear(width, width)) for _ in range(blocks)])
        self.alphas = nn.Parameter(torch.zeros(blocks)) if variant == "SkipInit" else None
        self.head = common.he_(nn.Linear(width, 10))

    def forward(self, x):
        x = self.stem(x)
        for i, (bn, fc) in enumerate(zip(self.bns, self.fcs)):
            f = fc(F.relu(bn(x)))
            if self.alphas is not None:
                f = self.alphas[i] * f
            x = f if self.variant == "plain" else x + f
        return self.head(F.relu(x))


def training(seeds, blocks, steps, lr):
    data = common.Mnist()
    print(f"== training: Linear(784 -> 64), {blocks} blocks of width 64, lr {lr}, {steps} steps, "
          f"batch 128, MNIST-10k {len(data.ytr)}/{len(data.yva)}")
    finals = {}
    for variant in ["residual", "SkipInit", "residual BN"]:
        rows = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = ResMlp(variant, blocks)
            losses, diverged = common.train(model, data, steps, lr, seed)
            final = float("nan") if diverged else common.tail_mean(losses)
            diverged = diverged or not math.isfinite(final) or final > 10
            rows.append((final, diverged, len(losses)))
        finals[variant] = [f for f, d, _ in rows if not d]
        per = ", ".join(f"{f:.4f}" if not d else f"diverged at step {n}" for f, d, n in rows)
        print(f"{variant}: final loss {common.mean_ci95([f for f, _, _ in rows])} (per seed {per}), "
              f"{sum(d for _, d, _ in rows)} of {len(rows)} diverged", flush=True)
    skip, bn = finals["SkipInit"], finals["residual BN"]
    if len(skip) == len(seeds) and bn:
        ms, mb = sum(skip) / len(skip), sum(bn) / len(bn)
        print(f"SkipInit mean {ms:.4f} vs 1.5 x BN + 0.05 = {1.5 * mb + 0.05:.4f}: "
              f"{'close to BN' if ms <= 1.5 * mb + 0.05 else 'NOT close to BN'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0-2", help="'0-2' or '0,1,2' (default 0-2, the lab's full)")
    ap.add_argument("--branch-layers", type=int, choices=[1, 2], default=1,
                    help="Linear layers per branch at init: 1 (the lab) or 2 (the older reference)")
    ap.add_argument("--train", action="store_true", help="also run the SkipInit training claim")
    ap.add_argument("--blocks", type=int, default=64, help="blocks of the trained nets (64)")
    ap.add_argument("--steps", type=int, default=400, help="training steps (400)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seeds = common.seeds_arg(a.seeds)
    print(f"torch {torch.__version__}; seeds {seeds}")
    at_init(seeds, a.branch_layers)
    if a.train:
        training(seeds, a.blocks, a.steps, a.lr)


if __name__ == "__main__":
    main()
