"""PyTorch's side of `cargo bench --bench vit_ops`: each op of a vit-res-12 block alone, forward
and backward of sum(y·1), at the bench's shapes (batch 128, 16 tokens of 64, 4 heads, MLP 128),
median milliseconds of 30 after 5 warm-up rounds, on 2 threads.

Run: <venv>/bin/python scripts/pytorch/vit_ops.py
"""

import statistics
import time

import torch
import torch.nn.functional as F

B, N, D, H = 128, 16, 64, 4
torch.set_num_threads(2)


def attention(qkv_lin, out_lin):
    def f(x):
        qkv = qkv_lin(x).reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        w = torch.softmax(q @ k.transpose(-2, -1) / (D // H) ** 0.5, dim=-1)
        return out_lin((w @ v).transpose(1, 2).reshape(B, N, D))

    return f


def time_op(name, width, op):
    x0 = torch.randn(B, N, width)
    ms = []
    for r in range(35):
        x = x0.clone().requires_grad_()
        t = time.perf_counter()
        y = op(x)
        y.backward(torch.ones_like(y))
        _ = x.grad.sum().item()
        if r >= 5:
            ms.append((time.perf_counter() - t) * 1e3)
    print(f"{name:<28} {statistics.median(ms):>8.3f} ms")


ln = torch.nn.LayerNorm(D)
time_op("layer norm [.,64]", D, ln)
time_op("self-attention (all)", D, attention(torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)))
time_op("linear 64->192", D, torch.nn.Linear(D, 3 * D))
time_op("linear 64->128", D, torch.nn.Linear(D, 2 * D))
time_op("gelu [.,128]", 2 * D, F.gelu)
time_op("add (skip)", D, lambda x: x + x)
