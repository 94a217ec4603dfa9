#!/usr/bin/env python3
"""PyTorch's side of bench/gpu.sh: the reference models of pytorch_reference.py, trained on the
GPU (CUDA), bare and instrumented, timed with torch.cuda.synchronize() around the timed steps.

The models, the instrumentation (forward hooks with the lab's per-layer statistics, per-parameter
gradient norms, BN running statistics read back every step) and the training setup (batch 128,
SGD momentum 0.9, lr 0.05, one random batch reused every step, cross-entropy) are imported from
the reference script itself, so both sides train the same networks. Without CUDA it runs on the
CPU and says so (for checking the script on a machine without a GPU).

Usage: python3 pytorch_gpu.py --reference PATH/pytorch_reference.py [--models a,b] [--steps N]
       [--batch 128] [--device cuda|cpu]
Prints one line per (model, mode) in the reference script's format:
  "<model> <bare|instrumented>: <samples/s> samples/s, <ms> ms/step (<device>)".
"""
import argparse
import importlib.util
import sys
import time

import torch
import torch.nn.functional as F


def load_reference(path):
    spec = importlib.util.spec_from_file_location("pytorch_reference", path)
    if spec is None or spec.loader is None:
        sys.exit(f"pytorch_gpu.py: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(ref, name, instrumented, steps, batch, device, warm=5):
    torch.manual_seed(0)
    make, shape = ref.MODELS[name]
    model = make().to(device)
    stats = ref.instrument(model) if instrumented else None
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for i in range(warm + steps):
        if i == warm:
            sync(device)
            t = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if instrumented:
            # What the lab reads back on a probe step, as the reference script does.
            gn = torch.stack([p.grad.norm() for p in model.parameters()])
            bn = [(m.running_mean, m.running_var) for m in model.modules()
                  if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            _ = [s.tolist() for s in stats], gn.tolist(), [(a.tolist(), b.tolist()) for a, b in bn]
            stats.clear()
        opt.step()
        loss.item()
    sync(device)
    dt = (time.perf_counter() - t) / steps
    mode = "instrumented" if instrumented else "bare"
    print(f"{name} {mode}: {batch / dt:.0f} samples/s, {dt * 1e3:.2f} ms/step ({device})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True, help="path of pytorch_reference.py")
    ap.add_argument("--models", default="cifar-resnet-20,mlp-res-20,vit-res-12")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    ref = load_reference(a.reference)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("pytorch_gpu.py: CUDA is not available; running on the CPU instead", flush=True)
        device = torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}", flush=True)
    for model in a.models.split(","):
        if model not in ref.MODELS:
            print(f"pytorch_gpu.py: the reference has no model {model}; skipped", flush=True)
            continue
        for instrumented in (False, True):
            bench(ref, model, instrumented, a.steps, a.batch, device)


if __name__ == "__main__":
    main()
