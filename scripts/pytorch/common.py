"""Pieces shared by the PyTorch comparison scripts of this folder: the shipped MNIST-10k, the
lab's MLP presets, and a training loop in the lab's MNIST setup.

What "the lab's setup" means here (read off src/data, src/spec/presets.rs and
src/experiments/util.rs):

- MNIST-10k from the repository's own assets/mnist10k (gzipped IDX), pixels / 255, a fixed
  80/20 train/validation split (8000/2000; the split does not depend on the run seed),
  standardised with the training split's mean and standard deviation (one channel: one mean,
  one std);
- shuffled epochs of full batches of 128 (the remainder dropped), reshuffled each epoch from the
  run seed;
- SGD with momentum 0.9, cross-entropy, final training loss = mean of the last 50 batch losses;
- He-normal weights (std sqrt(2 / fan_in)) for every Linear layer, the head included, zero
  biases; BN with gamma 1, beta 0, momentum 0.1, eps 1e-5.

The lab draws its split, batch order and weights from ChaCha8 generators; these scripts use
torch's generator with the same seeds, so a seed here is a different draw of the same
distribution, not the lab's exact network. Compare means over seeds, not single runs.

Four switches (add_setup_args) bring back the older PyTorch reference's choices, which the
numbers in EXPERIMENTS_NOTES.md's "PyTorch" columns were first measured with: --input raw
(0..1 pixels, not standardised), --split 9000 (9000/1000), --sampler replacement (batches drawn
with replacement) and --head pytorch (PyTorch's default Linear init for the head). The lesion
gap between those choices and the lab's is measured by lesion_alignment.py.

Not a script: the others import it (Python puts the script's own folder on sys.path).
"""
import gzip
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
# scripts/pytorch/ -> the repository root -> assets/mnist10k
MNIST_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "assets", "mnist10k"))


def read_idx(path):
    """A gzipped IDX file as a numpy array (u8 data, big-endian header)."""
    with gzip.open(path) as f:
        b = f.read()
    magic = struct.unpack(">I", b[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, b[4:4 + 4 * ndim])
    return np.frombuffer(b[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


class Mnist:
    """MNIST-10k split and standardised as the lab does it: `xtr`, `ytr` (8000), `xva`, `yva`
    (2000), inputs flattened to 784 features. `n_train` changes the split's size, `standardise`
    False keeps the raw 0..1 pixels."""

    def __init__(self, root=MNIST_DIR, n_train=8000, standardise=True, split_seed=0):
        images = read_idx(os.path.join(root, "mnist10k-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(root, "mnist10k-labels-idx1-ubyte.gz"))
        x = torch.tensor(images.reshape(len(images), -1).astype(np.float32) / 255.0)
        y = torch.tensor(labels.astype(np.int64))
        n = len(y)
        n_valid = min(max(n - n_train, 1), n - 1)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
        va, tr = order[:n_valid], order[n_valid:]
        if standardise:
            mean = x[tr].mean()
            std = x[tr].std(unbiased=False).clamp_min(1e-6)
            x = (x - mean) / std
        self.xtr, self.ytr = x[tr], y[tr]
        self.xva, self.yva = x[va], y[va]


class Batches:
    """Shuffled epochs of full batches over `n` samples, from `seed` (the lab's BatchSampler);
    with `replacement`, every batch is drawn independently with replacement instead."""

    def __init__(self, n, batch, seed, replacement=False):
        self.n, self.batch, self.replacement = n, min(batch, n), replacement
        self.gen = torch.Generator().manual_seed(seed ^ 0xBA7C4E55)
        self.order, self.cursor = None, n

    def next(self):
        if self.replacement:
            return torch.randint(0, self.n, (self.batch,), generator=self.gen)
        if self.cursor + self.batch > self.n:
            self.order = torch.randperm(self.n, generator=self.gen)
            self.cursor = 0
        idx = self.order[self.cursor:self.cursor + self.batch]
        self.cursor += self.batch
        return idx


def he_(linear):
    """The lab's Linear init: He-normal weights, zero bias."""
    nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / linear.in_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


class PresetMlp(nn.Module):
    """The lab's `mlp-plain-N` / `mlp-res-N` presets: Linear(784 -> width) -> ReLU, then N blocks
    Linear -> [BN] -> (+x) -> ReLU (the skip only when `residual`), then a Linear head.

    `lesioned` is a set of 0-based block indices that are deleted: the block passes its input
    through (the lab's lesion deletes the block's Linear and BN; after the ReLU that is the
    identity, since the input is already non-negative). `noise` (noisy BN) is a callable
    `noise(i, y)` applied to block i's BN output."""

    def __init__(self, blocks, width=64, residual=True, batch_norm=True, inputs=784, classes=10,
                 head="he"):
        super().__init__()
        self.inp = he_(nn.Linear(inputs, width))
        self.fcs = nn.ModuleList([he_(nn.Linear(width, width)) for _ in range(blocks)])
        self.bns = nn.ModuleList([nn.BatchNorm1d(width) if batch_norm else nn.Identity()
                                  for _ in range(blocks)])
        self.head = nn.Linear(width, classes)
        if head == "he":
            he_(self.head)
        self.residual = residual
        self.lesioned = set()
        self.noise = None

    def forward(self, x):
        x = F.relu(self.inp(x))
        for i, (fc, bn) in enumerate(zip(self.fcs, self.bns)):
            if i in self.lesioned:
                continue
            y = bn(fc(x))
            if self.noise is not None:
                y = self.noise(i, y)
            x = F.relu(y + x) if self.residual else F.relu(y)
        return self.head(x)


def preset(name, width=64, batch_norm=True, head="he"):
    """`mlp-plain-N` or `mlp-res-N` as a PresetMlp."""
    family, depth = name.rsplit("-", 1)
    if family not in ("mlp-plain", "mlp-res"):
        raise ValueError(f"unknown preset {name}")
    return PresetMlp(int(depth), width, residual=family == "mlp-res", batch_norm=batch_norm,
                     head=head)


def lr_at(step, total, lr, warmup=0, cosine=False):
    """The lab's schedule (TrainConfig::lr_at): linear warm-up over `warmup` steps, then
    constant or cosine decay to 0 at the last step; `step` is 0-based."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if not cosine:
        return lr
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def finite_grads(model):
    return all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def train(model, data, steps, lr, seed, batch=128, warmup=0, cosine=False, before_step=None,
          sampler="epochs"):
    """Trains `model` in the lab's setup; returns (batch losses, diverged). A run diverges when
    a loss or a gradient turns non-finite; it stops there, as the lab's runs do.
    `before_step(step, idx)` runs before every step with the batch indices it will train on."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    batches = Batches(len(data.ytr), batch, seed, replacement=sampler == "replacement")
    losses = []
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup, cosine)
        idx = batches.next()
        if before_step is not None:
            before_step(step, idx)
        loss = F.cross_entropy(model(data.xtr[idx]), data.ytr[idx])
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or not finite_grads(model):
            return losses, True
        opt.step()
    return losses, False


def tail_mean(losses, n=50):
    tail = losses[-n:]
    return sum(tail) / len(tail) if tail else float("nan")


@torch.no_grad()
def accuracy(model, x, y):
    """Accuracy in percent, the model in inference mode (BN running statistics)."""
    was = model.training
    model.eval()
    acc = (model(x).argmax(1) == y).float().mean().item() * 100.0
    model.train(was)
    return acc


def seeds_arg(text):
    """"0,1,2" or "0-4" -> a list of ints."""
    if "-" in text and "," not in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",") if s.strip()]


def mean_ci95(values):
    """'mean ± half-width of the 95 % t-interval' (just the mean for one value)."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return "nan"
    m = sum(v) / len(v)
    if len(v) < 2:
        return f"{m:.4g}"
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    # Two-sided 97.5 % quantiles of Student's t for 1..9 degrees of freedom, then ~normal.
    t = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262]
    q = t[len(v) - 2] if len(v) - 2 < len(t) else 1.96
    return f"{m:.4g} ± {q * sd / math.sqrt(len(v)):.2g}"


def add_setup_args(ap):
    """The data/init switches shared by the MNIST scripts (defaults: the lab's setting)."""
    ap.add_argument("--input", choices=["std", "raw"], default="std",
                    help="standardised inputs (the lab) or raw 0..1 pixels")
    ap.add_argument("--split", type=int, default=8000,
                    help="training samples, the rest validation (the lab: 8000)")
    ap.add_argument("--sampler", choices=["epochs", "replacement"], default="epochs",
                    help="shuffled epochs (the lab) or batches drawn with replacement")
    ap.add_argument("--head", choices=["he", "pytorch"], default="he",
                    help="He-normal head with zero bias (the lab) or PyTorch's default init")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def setup_from_args(a):
    """Sets the thread count; returns the data and a one-line description of the setting."""
    torch.set_num_threads(a.threads)
    data = Mnist(n_train=a.split, standardise=a.input == "std")
    setting = (f"input {a.input}, split {len(data.ytr)}/{len(data.yva)}, sampler {a.sampler}, "
               f"head {a.head}")
    print(f"torch {torch.__version__}; MNIST-10k from {MNIST_DIR}; {setting}", flush=True)
    return data
