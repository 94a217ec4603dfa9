"""Explains the gap between reslab's lesion experiment and the older PyTorch reference's lesion
study (a script outside this repository, whose setup this file keeps as its defaults) by
measurement: the reference's lesion study, with each known difference to reslab switchable,
over several seeds. `mnist_experiments.py lesion` runs the lab's setting with the lab's k-block
deletions as well.

Differences (reference -> reslab): raw 0..1 pixels -> standardised (train mean/std); 9000/1000
split -> 8000/2000; batches drawn with replacement -> shuffled epochs; head with PyTorch's
default init (uniform +-1/sqrt(fan_in), bias too) -> He normal weights and zero bias.

Usage (torch and numpy in a virtualenv, never in CI; MNIST-10k is read from the repository's
assets/mnist10k, whatever the working folder):
  python3 scripts/pytorch/lesion_alignment.py --seeds 0,1,2,3,4 [--input std] [--split 8000]
      [--sampler epochs] [--head he]
Prints, per setting and seed, the full validation accuracy and the mean and max accuracy drop
(points) over the 16 single-block deletions, for the residual and the plain net.
"""
import argparse, gzip, os, struct
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

torch.set_num_threads(2)


def idx(path):
    b = gzip.open(path).read(); nd = struct.unpack('>I', b[:4])[0] & 0xff
    dims = struct.unpack('>' + 'I' * nd, b[4:4 + 4 * nd])
    return np.frombuffer(b[4 + 4 * nd:], dtype=np.uint8).reshape(dims)


class Mlp(nn.Module):
    def __init__(s, depth, width, res, head):
        super().__init__()
        s.inp = nn.Linear(784, width)
        s.hs = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        s.bns = nn.ModuleList([nn.BatchNorm1d(width) for _ in range(depth)])
        s.res = res; s.out = nn.Linear(width, 10); s.skip_mask = [True] * depth
        for l in list(s.hs) + [s.inp]:
            nn.init.kaiming_normal_(l.weight, nonlinearity='relu'); nn.init.zeros_(l.bias)
        if head == 'he':
            nn.init.kaiming_normal_(s.out.weight, nonlinearity='relu'); nn.init.zeros_(s.out.bias)

    def forward(s, x):
        x = F.relu(s.inp(x))
        for i, (h, b) in enumerate(zip(s.hs, s.bns)):
            if not s.skip_mask[i]:
                continue  # lesion: the block passes its input through
            y = b(h(x))
            x = F.relu(y + x) if s.res else F.relu(y)
        return s.out(x)


def run(a, X, Y, res, seed):
    torch.manual_seed(seed)
    m = Mlp(16, 64, res, a.head)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed); perm = torch.randperm(len(X), generator=g)
    tr, va = perm[:a.split], perm[a.split:]
    Xn = X
    if a.input == 'std':
        mu, sd = X[tr].mean(), X[tr].std(unbiased=False)
        Xn = (X - mu) / sd
    order = []
    for s in range(600):
        if a.sampler == 'replacement':
            ib = tr[torch.randint(0, len(tr), (128,), generator=g)]
        else:
            if len(order) < 128:
                order = order + tr[torch.randperm(len(tr), generator=g)].tolist()
            ib, order = torch.tensor(order[:128]), order[128:]
        loss = F.cross_entropy(m(Xn[ib]), Y[ib]); opt.zero_grad(); loss.backward(); opt.step()
    m.eval()
    with torch.no_grad():
        acc = lambda: (m(Xn[va]).argmax(1) == Y[va]).float().mean().item()
        base = acc(); drops = []
        for i in range(16):
            m.skip_mask = [j != i for j in range(16)]
            drops.append(base - acc())
        m.skip_mask = [True] * 16
    return base, 100 * np.mean(drops), 100 * np.max(drops)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--root', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   '..', '..', 'assets', 'mnist10k'))
    ap.add_argument('--seeds', default='0')
    ap.add_argument('--input', choices=['raw', 'std'], default='raw')
    ap.add_argument('--split', type=int, default=9000, help='training samples (rest: validation)')
    ap.add_argument('--sampler', choices=['replacement', 'epochs'], default='replacement')
    ap.add_argument('--head', choices=['pytorch', 'he'], default='pytorch')
    a = ap.parse_args()
    X = torch.tensor(idx(os.path.join(a.root, 'mnist10k-images-idx3-ubyte.gz')).reshape(-1, 784).astype(np.float32) / 255.0)
    Y = torch.tensor(idx(os.path.join(a.root, 'mnist10k-labels-idx1-ubyte.gz')).astype(np.int64))
    setting = f"input {a.input}, split {a.split}, sampler {a.sampler}, head {a.head}"
    for res in (True, False):
        rows = [run(a, X, Y, res, int(s)) for s in a.seeds.split(',')]
        per = ', '.join(f"{d:.2f}" for _, d, _ in rows)
        print(f"{'res' if res else 'plain'}-16 [{setting}]: mean drop {np.mean([d for _, d, _ in rows]):.2f} pts "
              f"(per seed {per}), max {np.mean([x for _, _, x in rows]):.1f}, accuracy {100 * np.mean([b for b, _, _ in rows]):.1f} %", flush=True)


if __name__ == '__main__':
    main()
