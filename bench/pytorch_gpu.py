#!/usr/bin/env python3
"""PyTorch's side of bench/gpu.sh: the bench models of scripts/pytorch/bench_models.py, trained
on the GPU (CUDA), bare and instrumented, timed with torch.cuda.synchronize() around the timed
steps.

The models, the instrumentation (forward hooks with the lab's per-layer statistics, per-parameter
gradient norms, BN running statistics read back every step) are imported from bench_models.py
itself, and the training setup is the same (batch 128, SGD momentum 0.9, lr 0.05, one random
batch reused every step, cross-entropy), so the CPU and GPU runs train the same networks. Without CUDA it runs on the
CPU and says so (for checking the script on a machine without a GPU).

Usage: python3 bench/pytorch_gpu.py [--reference PATH/bench_models.py] [--models a,b] [--steps N]
       [--batch 128] [--device cuda|cpu]
--reference defaults to scripts/pytorch/bench_models.py of this repository.
Prints one line per (model, mode) in bench_models.py's format:
  "<model> <bare|instrumented>: <samples/s> samples/s, <ms> ms/step (<device>)".
"""
import argparse
import importlib.util
import os
import sys
import time

import torch
import torch.nn.functional as F


# bench/ -> the repository root -> scripts/pytorch/bench_models.py
DEFAULT_REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts",
                                 "pytorch", "bench_models.py")


def load_reference(path):
    spec = importlib.util.spec_from_file_location("bench_models", path)
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
            # What the lab reads back on a probe step, as bench_models.py does on the CPU.
            ref.read_back(model, stats)
        opt.step()
        loss.item()
    sync(device)
    dt = (time.perf_counter() - t) / steps
    mode = "instrumented" if instrumented else "bare"
    print(f"{name} {mode}: {batch / dt:.0f} samples/s, {dt * 1e3:.2f} ms/step ({device})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default=os.path.normpath(DEFAULT_REFERENCE),
                    help="path of bench_models.py (default: scripts/pytorch/bench_models.py)")
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
            print(f"pytorch_gpu.py: {a.reference} has no model {model}; skipped", flush=True)
            continue
        for instrumented in (False, True):
            bench(ref, model, instrumented, a.steps, a.batch, device)


if __name__ == "__main__":
    main()
