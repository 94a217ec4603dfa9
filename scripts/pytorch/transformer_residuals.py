#!/usr/bin/env python3
"""The lab's `transformer-residuals` experiment in PyTorch, in the lab's setting, to put its
numbers beside the lab's (src/experiments/transformer_residuals/).

The nets are the lab's presets (src/spec/vit.rs): a patch embedding of 7x7 patches of a 28x28
digit (16 tokens of 64, a learned position embedding drawn N(0, 0.02^2)), N blocks of 4-head
self-attention (one qkv map, an output map) and a token-wise MLP 64 -> 128 -> 64 with GELU,
LayerNorms over each token's features, mean pooling, a head:
  pre    x + Attn(LN1(x)), x + MLP(LN2(x)), a final LayerNorm        (vit-res-N)
  post   LN1(x + Attn(x)), LN2(x + MLP(x))                            (vit-postln-N)
  plain  pre's layers without the adds                                (vit-plain-N)
  attn / attn-res: the embedding and N attention layers only, without / with x + Attn(x).

--init lab (default) draws as the lab does: Xavier-normal weights for the embedding, qkv, out,
fc1 and fc2, He-normal for the head, zero biases. --init torch keeps PyTorch's defaults
(kaiming-uniform(a=sqrt 5): U(+-1/sqrt(fan_in)) for weights and biases), as the older reference
did; --init torch-normal draws every weight N(0, 1/(3 fan_in)) (PyTorch's default std) with zero
biases.

Parts:
  rank   token residual ||X - 1 mean_tokens(X)|| / ||X|| per layer at init, on the first 64
         training digits, mean over seeds (the lab's rank figure and criterion).
  grad   ||dL/dW_fc2|| per block at init, pre and post, one batch of 128.
  train  Adam, batch 128, shuffled epochs, STEPS steps, the lab's roles: pre 1e-3, plain 1e-3,
         pre 5e-3, post 5e-3, post 5e-3 with a 75-step linear warm-up; final training loss =
         mean of the last 20 batch losses, validation accuracy on the 2000 held-out digits.

Usage: transformer_residuals.py [--parts rank,grad,train] [--seeds 0-2] [--init lab|torch]
       [--steps 300] [--roles all|post-warm,...] [--threads 1]
Seeds seed torch's generator: other draws than the lab's ChaCha8 seeds; compare means.
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import Batches, Mnist, lr_at, tail_mean

DIM, HEADS, MLP, PATCH, TOKENS = 64, 4, 128, 7, 16


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.out = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // HEADS), dim=-1)
        return self.out((w @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.attn = Attention()
        if kind not in ("attn", "attn-res"):
            self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
            self.fc1, self.fc2 = nn.Linear(DIM, MLP), nn.Linear(MLP, DIM)

    def mlp(self, x):
        return self.fc2(F.gelu(self.fc1(x)))

    def forward(self, x):
        k = self.kind
        if k == "attn":
            return self.attn(x)
        if k == "attn-res":
            return x + self.attn(x)
        if k == "plain":
            return self.mlp(self.ln2(self.attn(self.ln1(x))))
        if k == "pre":
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class Vit(nn.Module):
    def __init__(self, kind, depth, init):
        super().__init__()
        self.embed = nn.Linear(PATCH * PATCH, DIM)
        self.pos = nn.Parameter(torch.randn(TOKENS, DIM) * 0.02)
        self.blocks = nn.ModuleList([Block(kind) for _ in range(depth)])
        self.norm = nn.LayerNorm(DIM) if kind in ("pre", "plain") else nn.Identity()
        self.head = nn.Linear(DIM, 10)
        for m in self.modules():
            if not isinstance(m, nn.Linear) or init == "torch":
                continue
            fan_in, fan_out = m.in_features, m.out_features
            if init == "lab":
                std = math.sqrt(2.0 / fan_in) if m is self.head else math.sqrt(2.0 / (fan_in + fan_out))
            else:  # torch-normal: PyTorch's default weight std, normal, zero biases
                std = 1.0 / math.sqrt(3.0 * fan_in)
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)

    def tokens(self, x):
        x = x.view(-1, 4, PATCH, 4, PATCH).permute(0, 1, 3, 2, 4).reshape(x.shape[0], TOKENS, -1)
        return self.embed(x) + self.pos

    def forward(self, x, trace=None):
        x = self.tokens(x)
        if trace is not None:
            trace.append(x.detach())
        for b in self.blocks:
            x = b(x)
            if trace is not None:
                trace.append(x.detach())
        return self.head(self.norm(x).mean(1))


def residual(x):
    return ((x - x.mean(1, keepdim=True)).norm() / x.norm()).item()


ROLES = [("pre-1e-3", "pre", 1e-3, 0), ("plain-1e-3", "plain", 1e-3, 0), ("pre-5e-3", "pre", 5e-3, 0),
         ("post-5e-3", "post", 5e-3, 0), ("post-warm", "post", 5e-3, 75)]


def part_rank(data, seeds, init, depth=12):
    print(f"rank: token residual by layer at init (0 = embedding), mean of seeds {seeds}")
    for kind in ("attn", "attn-res", "plain", "pre", "post"):
        curves = []
        for s in seeds:
            torch.manual_seed(s)
            net, trace = Vit(kind, depth, init), []
            with torch.no_grad():
                net(data.xtr[:64], trace)
            curves.append([residual(t) for t in trace])
        mean = [sum(c[l] for c in curves) / len(curves) for l in range(depth + 1)]
        print(f"  {kind:9s}" + "".join(f"{v:9.2e}" for v in mean))


def part_grad(data, seeds, init, depth=12):
    print(f"grad: ||dL/dW_fc2|| per block at init, mean of seeds {seeds}")
    for kind in ("pre", "post"):
        g = [0.0] * depth
        for s in seeds:
            torch.manual_seed(s)
            net = Vit(kind, depth, init)
            F.cross_entropy(net(data.xtr[:128]), data.ytr[:128]).backward()
            for i, b in enumerate(net.blocks):
                g[i] += b.fc2.weight.grad.norm().item() / len(seeds)
        print(f"  {kind:5s}" + "".join(f"{v:9.3f}" for v in g))


def train(data, kind, lr, warmup, steps, seed, init, depth=12):
    torch.manual_seed(seed)
    net = Vit(kind, depth, init)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    batches, losses = Batches(len(data.ytr), 128, seed), []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup)
        idx = batches.next()
        loss = F.cross_entropy(net(data.xtr[idx]), data.ytr[idx])
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            return float("inf"), float("nan")
        opt.step()
    with torch.no_grad():
        acc = (net(data.xva).argmax(1) == data.yva).float().mean().item() * 100
    return tail_mean(losses, 20), acc


def part_train(data, seeds, init, steps, roles):
    print(f"train: Adam, batch 128, {steps} steps; final loss (mean of the last 20) / val acc; seeds {seeds}")
    for name, kind, lr, warmup in ROLES:
        if roles != ["all"] and name not in roles:
            continue
        res = [train(data, kind, lr, warmup, steps, s, init) for s in seeds]
        losses = ", ".join(f"{l:.3f}" for l, _ in res)
        print(f"  {name:11s} loss {sum(l for l, _ in res) / len(res):.3f} ({losses}), "
              f"acc {sum(a for _, a in res) / len(res):.1f} %", flush=True)


def seeds_arg(text):
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="rank,grad,train")
    ap.add_argument("--seeds", default="0-2", type=seeds_arg)
    ap.add_argument("--init", default="lab", choices=["lab", "torch", "torch-normal"])
    ap.add_argument("--steps", default=300, type=int)
    ap.add_argument("--roles", default="all")
    ap.add_argument("--threads", default=1, type=int)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = Mnist()
    data.xtr, data.xva = data.xtr.view(-1, 1, 28, 28), data.xva.view(-1, 1, 28, 28)
    parts = a.parts.split(",")
    print(f"init: {a.init}")
    if "rank" in parts:
        part_rank(data, a.seeds, a.init)
    if "grad" in parts:
        part_grad(data, a.seeds, a.init)
    if "train" in parts:
        part_train(data, a.seeds, a.init, a.steps, a.roles.split(","))


if __name__ == "__main__":
    main()
