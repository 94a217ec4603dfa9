#!/usr/bin/env python3
"""reslab's MNIST-10k experiments in PyTorch, with the lab's networks and protocols
(src/experiments/*.rs), to put the lab's numbers beside PyTorch's. One subcommand each:

  degradation    He et al. 2016 (src/experiments/degradation.rs): mlp-plain-8, mlp-res-8,
                 mlp-plain-32, mlp-res-32 (width 64, BN in every block) in two regimes:
                 "constant" (SGD momentum 0.9, lr 0.05, 400 steps) and "scheduled" (100 warm-up
                 steps to lr 0.02, cosine decay to 0, 2000 steps). Prints the final training
                 loss (mean of the last 50 batch losses) and the final validation accuracy per
                 net, and the deep/shallow loss ratios. The lab's criteria: plain-32's loss
                 interval clears 2 x plain-8's; res-32 <= 1.5 x res-8's loss and its accuracy
                 >= res-8's - 1 point.
  lesion         Veit et al. 2016 (src/experiments/lesion.rs): mlp-res-16 and mlp-plain-16
                 (width 64, BN), 600 steps at lr 0.05; the validation accuracy drop (points)
                 from deleting each single block, and the mean drop over 10 random subsets of
                 k = 1..8 blocks deleted at once. A deleted block passes its input through.
  landscape      Li et al. 2018 (src/experiments/landscape.rs): plain-32 trained 400 steps at
                 lr 0.05; res-32 taken when its loss first matches plain-32's final one (checked
                 every 5 steps) and after the same 400 steps. Two pairs of random directions per
                 seed, N(0, 1) entries filter-normalised per output unit of every Linear weight
                 (head included), zero on biases and BN parameters; loss in inference mode on
                 the first 512 training samples. Ring rise = mean loss at 64 angles on the circle
                 of radius 0.5 minus the loss at the centre; the median over seeds x pairs. The
                 lab interpolates the ring from an 11 x 11 (quick) or 21 x 21 grid over [-1, 1]^2;
                 this script evaluates the loss on the circle itself.
  bn-smoothness  Santurkar et al. 2018 (src/experiments/bn_smoothness.rs): mlp-plain-8 (width
                 64) without BN, with BN and with noisy BN (after every BN, per step and layer a
                 shift mean m ~ U(-0.5, 0.5) and a scale mean s ~ U(0.75, 1.25), per activation
                 y * N(s, 0.2^2) + N(m, 0.2^2)), 600 steps at lr 0.01, 0.03, 0.1, 0.3; the final
                 validation accuracy (a diverged run counts 10 %), and at lr 0.03 every 30 steps
                 the loss range along the gradient (step sizes 0.05, 0.1, 0.2, 0.4 times the
                 gradient, on the step's own batch) and the effective beta (the largest
                 ||grad(theta - eta g) - g|| / ||eta g||). The lab's internal covariate shift
                 measurement is not reproduced here.

All of them use the lab's data setup (assets/mnist10k of this repository, standardised, 8000/2000,
shuffled epochs of 128, He-normal head; see common.py); --input raw --split 9000 --sampler
replacement --head pytorch bring back the older PyTorch reference's choices.

Usage (torch and numpy in a virtualenv, never needed by CI; 1 thread by default):
  python3 scripts/pytorch/mnist_experiments.py degradation [--regime constant|scheduled|both]
      [--seeds 0-2] [--nets mlp-plain-8,...] [--no-bn] [--lr X] [--steps N]
  python3 scripts/pytorch/mnist_experiments.py lesion [--seeds 0-2] [--steps 600]
  python3 scripts/pytorch/mnist_experiments.py landscape [--seeds 0-2]
  python3 scripts/pytorch/mnist_experiments.py bn-smoothness [--seeds 0] [--rates 0.01,0.03,0.1,0.3]
Each also takes --input, --split, --sampler, --head and --threads (see --help).
"""
import argparse
import copy
import math
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

WIDTH = 64


# ---- degradation

REGIMES = {
    "constant": dict(steps=400, lr=0.05, warmup=0, cosine=False),
    "scheduled": dict(steps=2000, lr=0.02, warmup=100, cosine=True),
}


def degradation(a, data):
    regimes = ["constant", "scheduled"] if a.regime == "both" else [a.regime]
    nets = a.nets.split(",")
    for regime in regimes:
        r = dict(REGIMES[regime])
        if a.lr is not None:
            r["lr"] = a.lr
        if a.steps is not None:
            r["steps"] = a.steps
        print(f"== degradation, {regime}: lr {r['lr']}, {r['steps']} steps, warm-up {r['warmup']}, "
              f"{'cosine' if r['cosine'] else 'constant'}; width {WIDTH}, BN {'off' if a.no_bn else 'on'}")
        means = {}
        for name in nets:
            losses, accs = [], []
            for seed in a.seeds:
                torch.manual_seed(seed)
                model = common.preset(name, WIDTH, batch_norm=not a.no_bn, head=a.head)
                ls, diverged = common.train(model, data, r["steps"], r["lr"], seed,
                                            warmup=r["warmup"], cosine=r["cosine"],
                                            sampler=a.sampler)
                losses.append(float("nan") if diverged else common.tail_mean(ls))
                accs.append(common.accuracy(model, data.xva, data.yva))
            means[name] = statistics.mean(losses)
            print(f"{name:<13} final loss {common.mean_ci95(losses)} (per seed "
                  f"{', '.join(f'{x:.4f}' for x in losses)}), validation accuracy "
                  f"{statistics.mean(accs):.1f} % (per seed {', '.join(f'{x:.1f}' for x in accs)})",
                  flush=True)
        for deep, shallow in (("mlp-plain-32", "mlp-plain-8"), ("mlp-res-32", "mlp-res-8")):
            if deep in means and shallow in means:
                print(f"{deep} / {shallow} mean final loss: {means[deep] / means[shallow]:.2f}x")


# ---- lesion

def lesion(a, data):
    blocks, steps = 16, a.steps or 600
    print(f"== lesion: width {WIDTH}, {blocks} blocks, BN, lr 0.05, {steps} steps")
    for name in (f"mlp-res-{blocks}", f"mlp-plain-{blocks}"):
        bases, singles, curves = [], [], []
        for seed in a.seeds:
            torch.manual_seed(seed)
            model = common.preset(name, WIDTH, head=a.head)
            common.train(model, data, steps, 0.05, seed, sampler=a.sampler)
            base = common.accuracy(model, data.xva, data.yva)
            drops = []
            for b in range(blocks):
                model.lesioned = {b}
                drops.append(base - common.accuracy(model, data.xva, data.yva))
            gen = torch.Generator().manual_seed(seed ^ 0x1E5104)
            curve = []
            for k in range(1, 9):
                ds = []
                for _ in range(10):
                    model.lesioned = set(torch.randperm(blocks, generator=gen)[:k].tolist())
                    ds.append(base - common.accuracy(model, data.xva, data.yva))
                curve.append(statistics.mean(ds))
            model.lesioned = set()
            bases.append(base)
            singles.append(statistics.mean(drops))
            curves.append(curve)
        k_curve = [statistics.mean(c[k] for c in curves) for k in range(8)]
        print(f"{name}: accuracy {statistics.mean(bases):.1f} %, mean single-block drop "
              f"{common.mean_ci95(singles)} points (per seed {', '.join(f'{x:.2f}' for x in singles)}); "
              f"k = 1..8 blocks: {', '.join(f'{x:.1f}' for x in k_curve)}", flush=True)


# ---- loss landscape

SUBSET, RADIUS, ANGLES, PAIRS, MATCH_EVERY = 512, 0.5, 64, 2, 5


@torch.no_grad()
def subset_loss(model, data):
    was = model.training
    model.eval()
    loss = F.cross_entropy(model(data.xtr[:SUBSET]), data.ytr[:SUBSET]).item()
    model.train(was)
    return loss


def directions(model, gen):
    """One random direction: N(0, 1) per weight entry of every Linear layer, each row (output
    unit) scaled to the norm of the weight's row; zero on biases and BN parameters."""
    d = {}
    for name, p in model.named_parameters():
        if p.dim() == 2:
            r = torch.randn(p.shape, generator=gen)
            r *= p.detach().norm(dim=1, keepdim=True) / r.norm(dim=1, keepdim=True).clamp_min(1e-10)
            d[name] = r
        else:
            d[name] = torch.zeros_like(p)
    return d


@torch.no_grad()
def ring_rise(model, data, gen):
    """(centre loss, mean loss on the ring) along one pair of filter-normalised directions."""
    delta, eta = directions(model, gen), directions(model, gen)
    centre = subset_loss(model, data)
    probe = copy.deepcopy(model)
    params = dict(probe.named_parameters())
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    ring = []
    for i in range(ANGLES):
        t = 2 * math.pi * i / ANGLES
        u, v = RADIUS * math.cos(t), RADIUS * math.sin(t)
        for n, p in params.items():
            p.copy_(theta[n] + u * delta[n] + v * eta[n])
        ring.append(subset_loss(probe, data))
    return centre, statistics.mean(ring)


def landscape(a, data):
    steps = a.steps or 400
    print(f"== loss landscape: width {WIDTH}, BN, lr 0.05, {steps} steps; {PAIRS} direction pairs "
          f"per seed, ring radius {RADIUS} at {ANGLES} angles, {SUBSET} training samples")
    rises = {"plain-32": [], "res-32 at matched loss": [], "res-32 after the budget": []}
    centres = {k: [] for k in rises}
    matched_steps = []
    for seed in a.seeds:
        torch.manual_seed(seed)
        plain = common.preset("mlp-plain-32", WIDTH, head=a.head)
        common.train(plain, data, steps, 0.05, seed, sampler=a.sampler)
        target = subset_loss(plain, data)
        torch.manual_seed(seed)
        res = common.preset("mlp-res-32", WIDTH, head=a.head)
        found = {}

        def check(step, _idx):
            if "model" not in found and step > 0 and step % MATCH_EVERY == 0 \
                    and subset_loss(res, data) <= target:
                found["model"], found["step"] = copy.deepcopy(res), step

        common.train(res, data, steps, 0.05, seed, before_step=check, sampler=a.sampler)
        if "model" not in found and subset_loss(res, data) <= target:
            found["model"], found["step"] = copy.deepcopy(res), steps
        matched_steps.append(found.get("step"))
        gen = torch.Generator().manual_seed(seed ^ 0x1A5D)
        for label, model in (("plain-32", plain), ("res-32 at matched loss", found.get("model")),
                             ("res-32 after the budget", res)):
            if model is None:
                continue
            for _ in range(PAIRS):
                c, r = ring_rise(model, data, gen)
                rises[label].append(r - c)
                centres[label].append(c)
    print(f"res-32 matched plain-32's final loss at steps {matched_steps}")
    for label, v in rises.items():
        if v:
            print(f"{label:<24} median ring rise {statistics.median(v):.3f} (all "
                  f"{', '.join(f'{x:.2f}' for x in v)}; median centre {statistics.median(centres[label]):.3f})")


# ---- BN smoothness

STEP_SIZES = (0.05, 0.1, 0.2, 0.4)
SMOOTHNESS_RATE, EVERY = 0.03, 30


class NoisyBn:
    """Per step and BN layer a fresh draw: shift mean U(-0.5, 0.5), scale mean U(0.75, 1.25),
    per activation scale N(s, 0.2^2) and shift N(m, 0.2^2). Only in training mode."""

    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed ^ 0x0015EB17)
        self.draws = {}

    def draw(self, layers, batch):
        self.draws = {}
        for i in range(layers):
            m = 0.5 * (2 * torch.rand(1, generator=self.gen).item() - 1)
            s = 1 + 0.25 * (2 * torch.rand(1, generator=self.gen).item() - 1)
            scale = s + 0.2 * torch.randn(batch, WIDTH, generator=self.gen)
            shift = m + 0.2 * torch.randn(batch, WIDTH, generator=self.gen)
            self.draws[i] = (scale, shift)

    def __call__(self, model):
        def apply(i, y):
            if not model.training or y.shape[0] != self.draws[i][0].shape[0]:
                return y
            scale, shift = self.draws[i]
            return y * scale + shift
        return apply


def loss_and_grad(model, x, y):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss.item(), [p.grad.detach().clone() for p in model.parameters()]


def smoothness(model, x, y):
    """(loss range over the step sizes along the gradient, effective beta) on one batch, in
    training mode, on a copy of the model (its BN running statistics left alone)."""
    probe = copy.deepcopy(model)
    _, g = loss_and_grad(probe, x, y)
    g_norm = math.sqrt(sum(float((t * t).sum()) for t in g)) or 1e-30
    theta = [p.detach().clone() for p in probe.parameters()]
    losses, beta = [], 0.0
    for eta in STEP_SIZES:
        with torch.no_grad():
            for p, t, d in zip(probe.parameters(), theta, g):
                p.copy_(t - eta * d)
        loss, g2 = loss_and_grad(probe, x, y)
        losses.append(loss)
        change = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(g, g2)))
        beta = max(beta, change / (eta * g_norm))
    spread = max(losses) - min(losses) if all(math.isfinite(v) for v in losses) else math.inf
    return spread, beta


def bn_smoothness(a, data):
    steps, rates = a.steps or 600, [float(r) for r in a.rates.split(",")]
    print(f"== bn-smoothness: mlp-plain-8, width {WIDTH}, {steps} steps, rates {rates}; "
          f"smoothness at lr {SMOOTHNESS_RATE} every {EVERY} steps")
    for variant in ("no BN", "BN", "noisy BN"):
        accs, ranges, betas = {r: [] for r in rates}, [], []
        for seed in a.seeds:
            for lr in rates:
                torch.manual_seed(seed)
                model = common.preset("mlp-plain-8", WIDTH, batch_norm=variant != "no BN",
                                      head=a.head)
                noise = NoisyBn(seed) if variant == "noisy BN" else None
                if noise is not None:
                    model.noise = noise(model)

                def before(step, idx, model=model, noise=noise, lr=lr):
                    if noise is not None:
                        noise.draw(len(model.fcs), len(idx))
                    if lr == SMOOTHNESS_RATE and step % EVERY == 0:
                        spread, beta = smoothness(model, data.xtr[idx], data.ytr[idx])
                        ranges.append(spread)
                        betas.append(beta)

                _, diverged = common.train(model, data, steps, lr, seed, before_step=before,
                                           sampler=a.sampler)
                accs[lr].append(10.0 if diverged else common.accuracy(model, data.xva, data.yva))
        per_rate = ", ".join(f"lr {r}: {statistics.mean(v):.1f} %" for r, v in accs.items())
        smooth = ""
        if ranges:
            smooth = (f"; at lr {SMOOTHNESS_RATE}: mean loss range {statistics.mean(ranges):.4g}, "
                      f"mean beta {statistics.mean(betas):.4g}")
        print(f"{variant:<9} validation accuracy {per_rate}{smooth}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="experiment", required=True)
    p = sub.add_parser("degradation", help="plain vs residual MLPs at depths 8 and 32")
    p.add_argument("--regime", choices=["constant", "scheduled", "both"], default="both")
    p.add_argument("--nets", default="mlp-plain-8,mlp-res-8,mlp-plain-32,mlp-res-32")
    p.add_argument("--no-bn", action="store_true", help="leave BN out of every block")
    p.add_argument("--lr", type=float, help="override the regime's peak learning rate")
    p.add_argument("--steps", type=int, help="override the regime's steps")
    p.add_argument("--seeds", default="0-2")
    p = sub.add_parser("lesion", help="delete blocks of trained res-16 / plain-16")
    p.add_argument("--steps", type=int, help="training steps (600)")
    p.add_argument("--seeds", default="0-2")
    p = sub.add_parser("landscape", help="ring rise of plain-32 and res-32 loss surfaces")
    p.add_argument("--steps", type=int, help="training steps (400)")
    p.add_argument("--seeds", default="0-2")
    p = sub.add_parser("bn-smoothness", help="no BN / BN / noisy BN over learning rates")
    p.add_argument("--rates", default="0.01,0.03,0.1,0.3")
    p.add_argument("--steps", type=int, help="training steps (600)")
    p.add_argument("--seeds", default="0")
    for p in sub.choices.values():
        common.add_setup_args(p)
    a = ap.parse_args()
    a.seeds = common.seeds_arg(a.seeds)
    data = common.setup_from_args(a)
    print(f"seeds {a.seeds}")
    {"degradation": degradation, "lesion": lesion, "landscape": landscape,
     "bn-smoothness": bn_smoothness}[a.experiment](a, data)


if __name__ == "__main__":
    main()
