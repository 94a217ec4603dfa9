#!/usr/bin/env python3
"""The lab's distribution-shift experiment ("red roses") in PyTorch, to put its table beside
`reslab experiment distribution-shift`.

What it does, read off src/data/coloured.rs, src/data/shift.rs, src/spec/presets.rs (cnn-3),
src/experiments/distribution_shift/ and src/train/evaluate.rs:

- Coloured MNIST from the shipped MNIST-10k: every digit v in [0, 1]^(28x28) becomes
  v * shade + (1 - v) * 0.05 per channel, the shade the palette's base colour darkened by a
  factor U(0.6, 1) and jittered by U(-0.08, 0.08) per channel (clamped to [0, 1]); base colours
  red (1, .1, .1), orange (1, .55, .1), green (.15, .9, .2), blue (.2, .35, 1), grey (.8, .8, .8);
  `all` picks one of those five per image; `inverted` is 1 - the red image. 8000 / 2000 split
  (seeded permutation), inputs standardised per channel with the training split's statistics.
- Shifts of the red validation digits (raw pixels, before standardising): scale x0.4,
  brightness +0.3, contrast 0.5 around 0.5, tint 0.3 (channel gains 1.3, 1.0, 0.7), contrast 0.5
  around each image's own mean, contrast around each image's own mean by a gain drawn per image
  log-uniform in [0.25, 4] ("image-gain:0.25", the per-image criterion's set), Gaussian noise sd 0.1, translation by 4 px and rotation by 25
  degrees, both repeating the edge pixels.
- cnn-3: conv3x3(3->16) N ReLU, conv3x3(16->32, s2) N ReLU, conv3x3(32->64, s2) N ReLU, global
  average pool, linear head; N = BatchNorm, GroupNorm(4), LayerNorm (GroupNorm(1): per-channel
  affine) or none (then the convs have biases). He-normal weights, zero biases.
- SGD momentum 0.9, batch 128 (shuffled epochs, remainder dropped), lr 0.2 after a linear
  warm-up of a tenth of the steps, cosine to 0; 800 steps (`--steps 400` is the lab's quick).
- Test-time modes of the BN nets: running statistics (batches of 500), each test batch's own
  statistics (batches of 500, and of 4 on red), AdaBN (statistics re-estimated as the average
  of the first 20 batches of 100, then eval) and Schneider et al.'s prior (per batch of n = 500:
  N/(N+n) running + n/(N+n) batch, N = 16, from one training-mode pass, as the lab does it;
  PyTorch moves the running variance by the unbiased batch variance, the lab by the biased
  one: a factor n/(n-1) = 1.002 on that part).

Usage: red_roses.py [--seeds 0,1,2] [--steps 800] [--threads 1]
Prints the accuracy (%) per test set x net/mode (mean over seeds) and the lab's criterion
values. Seeds seed torch's generator: other draws than the lab's ChaCha8 seeds.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MNIST_DIR, read_idx  # noqa: E402

BASE = {
    "red": (1.0, 0.1, 0.1),
    "orange": (1.0, 0.55, 0.1),
    "green": (0.15, 0.9, 0.2),
    "blue": (0.2, 0.35, 1.0),
    "grey": (0.8, 0.8, 0.8),
}
MIXED = ["red", "orange", "green", "blue", "grey"]
BACKGROUND = 0.05


def shades(palette, n, g):
    """One shade per image: the base colour darkened by U(0.6, 1), jittered by U(-0.08, 0.08)."""
    names = [MIXED[i] for i in torch.randint(0, 5, (n,), generator=g)] if palette == "all" \
        else [("red" if palette == "inverted" else palette)] * n
    base = torch.tensor([BASE[p] for p in names])
    b = 0.6 + 0.4 * torch.rand(n, 1, generator=g)
    jitter = 0.08 * (2 * torch.rand(n, 3, generator=g) - 1)
    return (b * base + jitter).clamp(0, 1)


def colourise(x, palette, g):
    """x: [n, 28, 28] in [0, 1] -> [n, 3, 28, 28]."""
    c = shades(palette, len(x), g)[:, :, None, None]
    img = x[:, None] * c + (1 - x[:, None]) * BACKGROUND
    return 1 - img if palette == "inverted" else img


def edge_sample(img, sy, sx):
    """Bilinear samples of img [n, c, h, w] at float coordinates (h, w grids), edge repeated."""
    n, c, h, w = img.shape
    y0, x0 = sy.floor(), sx.floor()
    fy, fx = sy - y0, sx - x0
    out = 0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy = (y0 + dy).clamp(0, h - 1).long()
            xx = (x0 + dx).clamp(0, w - 1).long()
            out = out + img[:, :, yy, xx] * (wy * wx)
    return out


def shift(img, kind, s, g):
    if kind == "scale":
        return img * s
    if kind == "brightness":
        return img + s
    if kind == "contrast":
        return 0.5 + s * (img - 0.5)
    if kind == "tint":
        gains = torch.tensor([1 + s, 1.0, 1 - s])[None, :, None, None]
        return img * gains
    if kind == "image-contrast":
        m = img.mean((1, 2, 3), keepdim=True)
        return m + s * (img - m)
    if kind == "image-gain":
        m = img.mean((1, 2, 3), keepdim=True)
        span = -math.log(s)
        gain = torch.exp((2 * torch.rand(img.shape[0], 1, 1, 1, generator=g) - 1) * span)
        return m + gain * (img - m)
    if kind == "noise":
        return img + s * torch.randn(img.shape, generator=g)
    h, w = img.shape[2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    if kind == "translate":
        return edge_sample(img, ys - round(s), xs - round(s))
    if kind == "rotate":
        t = math.radians(s)
        cy, cx = (h - 1) / 2, (w - 1) / 2
        dy, dx = ys - cy, xs - cx
        sx = cx + math.cos(t) * dx - math.sin(t) * dy
        sy = cy + math.sin(t) * dx + math.cos(t) * dy
        return edge_sample(img, sy, sx)
    raise ValueError(kind)


SETS = [("red", "red", None), ("orange", "orange", None), ("green", "green", None),
        ("blue", "blue", None), ("grey", "grey", None), ("inverted", "inverted", None),
        ("scale:0.4", "red", ("scale", 0.4)), ("brightness:0.3", "red", ("brightness", 0.3)),
        ("contrast:0.5", "red", ("contrast", 0.5)), ("tint:0.3", "red", ("tint", 0.3)),
        ("image-contrast:0.5", "red", ("image-contrast", 0.5)),
        ("image-gain:0.25", "red", ("image-gain", 0.25)), ("noise:0.1", "red", ("noise", 0.1)),
        ("translate:4", "red", ("translate", 4)), ("rotate:25", "red", ("rotate", 25))]


class Data:
    def __init__(self, split_seed=0):
        images = read_idx(os.path.join(MNIST_DIR, "mnist10k-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(MNIST_DIR, "mnist10k-labels-idx1-ubyte.gz"))
        self.x = torch.tensor(images.astype(np.float32) / 255.0)
        self.y = torch.tensor(labels.astype(np.int64))
        order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(split_seed))
        self.va, self.tr = order[:2000], order[2000:]

    def palette(self, name, seed=0):
        return colourise(self.x, name, torch.Generator().manual_seed(seed + 77))

    def test_sets(self):
        raw = {}
        for name, pal, sh in SETS:
            x = self.palette(pal)[self.va]
            if sh:
                x = shift(x, sh[0], sh[1], torch.Generator().manual_seed(5))
            raw[name] = x
        return raw


def standardise(train, x):
    m = train.mean((0, 2, 3), keepdim=True)
    s = train.std((0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-6)
    return (x - m) / s


def norm(kind, c):
    return {"bn": lambda: nn.BatchNorm2d(c), "gn": lambda: nn.GroupNorm(4, c),
            "ln": lambda: nn.GroupNorm(1, c), "none": lambda: nn.Identity()}[kind]()


class Cnn3(nn.Module):
    def __init__(self, kind):
        super().__init__()
        layers, cin = [], 3
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=(kind == "none"))
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
            layers += [conv, norm(kind, cout), nn.ReLU()]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(64, 10)
        nn.init.kaiming_normal_(self.head.weight, nonlinearity="relu")
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))


def lr_at(step, steps, lr=0.2):
    warm = steps // 10
    if step < warm:
        return lr * (step + 1) / warm
    return lr * 0.5 * (1 + math.cos(math.pi * min((step - warm) / max(steps - warm, 1), 1)))


def train(kind, xtr, ytr, steps, seed):
    torch.manual_seed(seed)
    net = Cnn3(kind)
    opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9)
    g = torch.Generator().manual_seed(seed + 1000)
    net.train()
    order, pos = torch.randperm(len(ytr), generator=g), 0
    for step in range(steps):
        if pos + 128 > len(ytr):
            order, pos = torch.randperm(len(ytr), generator=g), 0
        i = order[pos:pos + 128]
        pos += 128
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps)
        loss = F.cross_entropy(net(xtr[i]), ytr[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def bns(net):
    return [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]


@torch.no_grad()
def accuracy(net, x, y, mode="running", batch=500):
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.momentum) for m in bns(net)]
    net.eval()
    if mode == "adabn":
        for m in bns(net):
            m.reset_running_stats()
            m.momentum = None
        net.train()
        for k in range(20):
            net(x[k * 100:(k + 1) * 100])
        net.eval()
        batch = 100
    correct = 0
    for k in range(0, len(y), batch):
        xb = x[k:k + batch]
        if mode == "batch":
            for m in bns(net):
                m.train()
                m.momentum = 0.0
        elif mode == "prior":
            # As the lab: one training-mode pass moves every layer's running statistics by
            # n/(N+n) towards the batch's, then the batch is evaluated with them.
            run = [(m.running_mean.clone(), m.running_var.clone()) for m in bns(net)]
            for m in bns(net):
                m.train()
                m.momentum = len(xb) / (16.0 + len(xb))
            net(xb)
            net.eval()
        correct += (net(xb).argmax(1) == y[k:k + batch]).sum().item()
        if mode == "prior":
            for m, (rm, rv) in zip(bns(net), run):
                m.running_mean.copy_(rm)
                m.running_var.copy_(rv)
        net.eval()
    for m, (rm, rv, mo) in zip(bns(net), saved):
        m.running_mean.copy_(rm)
        m.running_var.copy_(rv)
        m.momentum = mo
    return 100.0 * correct / len(y)


COLUMNS = ["bn", "bn-batch", "bn-batch4", "bn-adabn", "bn-prior16", "gn", "ln", "none", "bn-all"]


def one_seed(data, raw, steps, seed):
    y = data.y[data.va]
    table = {s: {} for s, _, _ in SETS}
    for col, kind, pal in (("bn", "bn", "red"), ("gn", "gn", "red"), ("ln", "ln", "red"),
                           ("none", "none", "red"), ("bn-all", "bn", "all")):
        train_raw = data.palette(pal)[data.tr]
        xtr = standardise(train_raw, train_raw)
        net = train(kind, xtr, data.y[data.tr], steps, seed)
        for s, _, _ in SETS:
            x = standardise(train_raw, raw[s])
            table[s][col] = accuracy(net, x, y)
            if col == "bn":
                table[s]["bn-batch"] = accuracy(net, x, y, "batch")
                table[s]["bn-adabn"] = accuracy(net, x, y, "adabn")
                table[s]["bn-prior16"] = accuracy(net, x, y, "prior")
        x = standardise(train_raw, raw["red"])
        table["red"]["bn-batch4" if col == "bn" else col + "-batch4"] = accuracy(net, x, y, "batch", 4)
        print(f"seed {seed}: {col} trained", file=sys.stderr, flush=True)
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = Data()
    raw = data.test_sets()
    tables = [one_seed(data, raw, a.steps, int(s)) for s in a.seeds.split(",")]
    mean = {s: {c: float(np.mean([t[s][c] for t in tables])) for c in tables[0][s]}
            for s, _, _ in SETS}
    print(f"{'test set':<20}" + "".join(f"{c:>11}" for c in COLUMNS))
    for s, _, _ in SETS:
        print(f"{s:<20}" + "".join(f"{mean[s].get(c, float('nan')):>11.1f}" for c in COLUMNS))
    red = mean["red"]
    hue = lambda col: red[col] - np.mean([mean[s][col] for s in ("green", "blue", "grey")])
    print(f"\ncolour drop: bn {hue('bn'):.1f}, bn-all {hue('bn-all'):.1f} points")
    for mode in ("bn-batch", "bn-adabn", "bn-prior16"):
        def rec(sets):
            lost = sum(red["bn"] - mean[s]["bn"] for s in sets)
            return sum(mean[s][mode] - mean[s]["bn"] for s in sets) / lost
        print(f"recovery {mode}: gains {rec(['scale:0.4', 'tint:0.3']):.3f}, offsets "
              f"{rec(['brightness:0.3', 'contrast:0.5']):.3f}, geometric "
              f"{rec(['translate:4', 'rotate:25']):.3f}, hues {rec(['green', 'blue', 'grey']):.3f}")
    for pi in ("image-contrast:0.5", "image-gain:0.25"):
        best = max(mean[pi][c] for c in ("bn", "bn-batch", "bn-adabn", "bn-prior16"))
        print(f"{pi} drop: bn best mode {red['bn'] - best:.1f}, gn "
              f"{red['gn'] - mean[pi]['gn']:.1f}, ln {red['ln'] - mean[pi]['ln']:.1f}")
    print(f"batches of 4 on red: bn {red['bn'] - red['bn-batch4']:.1f}, gn "
          f"{red['gn'] - red['gn-batch4']:.1f}, ln {red['ln'] - red['ln-batch4']:.1f}")


if __name__ == "__main__":
    main()
