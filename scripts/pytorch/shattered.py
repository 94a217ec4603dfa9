#!/usr/bin/env python3
"""Shattered gradients (Balduzzi et al. 2017) in PyTorch, the networks of reslab's
`shattered-gradients` experiment (src/experiments/shattered.rs).

What it measures: the lag-1 autocorrelation R(1) of df/dx over 256 scalar inputs evenly spaced
in [-2, 2], for a 1-layer net, plain nets of 4, 12 and 24 hidden layers and a 50-block ResNet,
at initialisation, with BN and without BN. R(1) near 1 is a smooth gradient; near 0, white
noise ("shattered").

The networks (width 200, He-normal weights):
  input   Linear(1 -> 200) with biases N(0, 1) and no BN (so its kinks spread over [-2, 2]);
  plain-n input -> ReLU, then n x [Linear -> BN -> ReLU] (plain-0 is the 1-layer net);
  ResNet-b input, then b x [x + Linear(ReLU(BN(x)))] (pre-activation), then ReLU;
  head    Linear(200 -> 1);
  hidden layers and the head have biases N(0, 0.1^2). Without BN the BN layers are left out.
BN takes its statistics from one training-mode pass over the 256 inputs (momentum 1), then the
gradient is taken in inference mode, so the samples do not interact and d(sum f)/dx_i is
df(x_i)/dx_i. R(k) = sum_i (g_i - m)(g_{i+k} - m) / sum_i (g_i - m)^2.

The random draws follow the order of the reference that reslab's PYTORCH_R1 constant was
measured with (modules built in the order input, hidden layers, BNs, head with torch.manual_seed
(seed), then re-initialised), so seeds 0-4 give those numbers again.

Usage (from anywhere; torch in a virtualenv, never needed by CI):
  python3 scripts/pytorch/shattered.py                 # 5 seeds, with and without BN
  python3 scripts/pytorch/shattered.py --bn on --seeds 0-9
  python3 scripts/pytorch/shattered.py --bn off --nets plain-24,resnet-50
Prints R(1) per seed and the mean per network, then the reslab's recorded reference values.
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTH = 200
POINTS = 256
INPUT_BIAS_STD = 1.0
BIAS_STD = 0.1

# reslab's PYTORCH_R1 (src/experiments/shattered.rs): mean R(1) over seeds 0-4, with BN.
RESLAB_PYTORCH_R1 = {"1-layer": 0.978, "plain-4": 0.859, "plain-12": 0.161, "plain-24": -0.034,
                     "resnet-50": 0.731}
NETS = ["1-layer", "plain-4", "plain-12", "plain-24", "resnet-50"]


def parse_net(name):
    """'1-layer' -> ('plain', 0), 'plain-12' -> ('plain', 12), 'resnet-50' -> ('resnet', 50)."""
    if name == "1-layer":
        return "plain", 0
    kind, depth = name.rsplit("-", 1)
    if kind not in ("plain", "resnet"):
        raise SystemExit(f"shattered.py: unknown net {name} (1-layer, plain-N, resnet-N)")
    return kind, int(depth)


class ShatterNet(nn.Module):
    def __init__(self, kind, depth, batch_norm, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.kind, self.batch_norm = kind, batch_norm
        self.inp = nn.Linear(1, WIDTH)
        self.hidden = nn.ModuleList([nn.Linear(WIDTH, WIDTH) for _ in range(depth)])
        # Built even without BN, so that both views draw the same weights for a seed.
        self.bns = nn.ModuleList([nn.BatchNorm1d(WIDTH, momentum=1.0) for _ in range(depth)])
        self.head = nn.Linear(WIDTH, 1)
        for layer in [self.inp, *self.hidden, self.head]:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.normal_(layer.bias, 0.0, BIAS_STD)
        nn.init.normal_(self.inp.bias, 0.0, INPUT_BIAS_STD)

    def norm(self, i, h):
        return self.bns[i](h) if self.batch_norm else h

    def forward(self, x):
        h = self.inp(x)
        if self.kind == "plain":
            h = F.relu(h)
            for i, fc in enumerate(self.hidden):
                h = F.relu(self.norm(i, fc(h)))
            return self.head(h)
        for i, fc in enumerate(self.hidden):
            h = h + fc(F.relu(self.norm(i, h)))
        return self.head(F.relu(h))


def input_gradient(net, xs):
    """df/dx at every input, BN statistics from one training-mode pass over the inputs."""
    if net.batch_norm:
        net.train()
        with torch.no_grad():
            net(xs)
    net.eval()
    x = xs.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(x).sum(), x)
    return g.squeeze(1).double()


def autocorrelation(g, lag=1):
    c = g - g.mean()
    return float((c[lag:] * c[:-lag]).sum() / (c * c).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0-4", help="'0-4' or '0,1,2' (default 0-4)")
    ap.add_argument("--bn", choices=["both", "on", "off"], default="both",
                    help="measure with BN, without BN, or both (default)")
    ap.add_argument("--nets", default=",".join(NETS), help="comma-separated: " + ",".join(NETS))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if "-" in a.seeds and "," not in a.seeds:
        lo, hi = a.seeds.split("-")
        seeds = list(range(int(lo), int(hi) + 1))
    else:
        seeds = [int(s) for s in a.seeds.split(",")]
    xs = torch.linspace(-2.0, 2.0, POINTS).unsqueeze(1)
    views = {"both": [True, False], "on": [True], "off": [False]}[a.bn]
    print(f"torch {torch.__version__}; seeds {seeds}; width {WIDTH}, {POINTS} inputs in [-2, 2]")
    means = {}
    for bn in views:
        print(f"== {'with' if bn else 'without'} BN")
        for name in a.nets.split(","):
            kind, depth = parse_net(name)
            r1 = [autocorrelation(input_gradient(ShatterNet(kind, depth, bn, s), xs)) for s in seeds]
            means[(name, bn)] = sum(r1) / len(r1)
            per = ", ".join(f"{r:.3f}" for r in r1)
            print(f"{name:<10} mean R(1) {means[(name, bn)]:6.3f}   per seed {per}", flush=True)
    if True in views and seeds == list(range(5)):
        print("== against reslab's PYTORCH_R1 (with BN, seeds 0-4)")
        for name, ref in RESLAB_PYTORCH_R1.items():
            if (name, True) in means:
                print(f"{name:<10} measured {means[(name, True)]:6.3f}, recorded {ref:6.3f}")


if __name__ == "__main__":
    main()
