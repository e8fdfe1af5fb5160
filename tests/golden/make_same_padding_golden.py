#!/usr/bin/python3
"""Reference values for "same" padding at any stride (TensorFlow's rule), from PyTorch (Debian
python3-torch 1.13), float32.

Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_same_padding_golden.py
Writes tests/golden/same_padding/*.npy, read by tests/nn/same_padding_test.cpp. CI only reads them.
@generated files: every .npy under tests/golden/same_padding/ comes from this script.

PyTorch's padding="same" exists for stride 1 only, so each case pads explicitly with F.pad by
TensorFlow's rule, computed here on its own:
  out = ceil(in / stride),  total = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0),
  begin = total // 2, end = total - begin  (the odd pixel at the end: bottom / right)
then runs the op unpadded. Max pooling pads with -inf; average pooling divides the window sum by
the number of real pixels (TensorFlow's "same" average, padding not counted).

Each case <name> saves <name>_params (int64: the kernel, stride and dilation per spatial dim, h
first), <name>_x, for convolutions <name>_w and <name>_b, the output <name>_y, a seeded upstream
gradient <name>_dy and the input gradient <name>_dx of sum(y * dy).
"""
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

out = pathlib.Path(__file__).resolve().parent / "same_padding"
out.mkdir(exist_ok=True)
torch.manual_seed(0)


def save(name, t):
    np.save(out / f"{name}.npy", t.detach().numpy() if isinstance(t, torch.Tensor) else t)


def tf_same(size, k, s, d):
    o = math.ceil(size / s)
    total = max((o - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def pads_for(spatial, k, s, d):
    """F.pad's order: last dim first."""
    pads = []
    for i in reversed(range(len(spatial))):
        pads += list(tf_same(spatial[i], k[i], s[i], d[i]))
    return pads


def finish(name, x, y, params, extra=None):
    save(f"{name}_params", np.array(params, dtype=np.int64))
    save(f"{name}_x", x)
    for key, t in (extra or {}).items():
        save(f"{name}_{key}", t)
    save(f"{name}_y", y)
    dy = torch.randn(y.shape)
    save(f"{name}_dy", dy)
    y.backward(dy)
    save(f"{name}_dx", x.grad)


# ---- convolutions: (name, x shape, w shape, stride, dilation)
conv_cases = [
    ("conv2d_s1_even_kernel", (2, 3, 7, 6), (4, 3, 4, 3), (1, 1), (1, 1)),
    ("conv2d_s2", (2, 3, 9, 8), (4, 3, 3, 3), (2, 2), (1, 1)),
    ("conv2d_s2_dilated", (1, 2, 10, 7), (3, 2, 3, 2), (2, 3), (2, 1)),
    ("conv2d_s2_no_pad_needed", (1, 2, 8, 8), (2, 2, 2, 2), (2, 2), (1, 1)),
    ("conv1d_s2", (2, 3, 11), (5, 3, 4), (2,), (1,)),
]
for name, xs, ws, stride, dil in conv_cases:
    x = torch.randn(*xs).requires_grad_()
    w, b = torch.randn(*ws), torch.randn(ws[0])
    k = ws[2:]
    xp = F.pad(x, pads_for(xs[2:], k, stride, dil))
    conv = F.conv2d if len(k) == 2 else F.conv1d
    y = conv(xp, w, b, stride, 0, dil)
    assert list(y.shape[2:]) == [math.ceil(n / s) for n, s in zip(xs[2:], stride)]
    finish(name, x, y, list(k) + list(stride) + list(dil), {"w": w, "b": b})

# ---- pooling: (name, x shape, kernel, stride)
pool_cases = [
    ("max_pool2d_k3_s2", (2, 2, 7, 8), (3, 3), (2, 2)),
    ("max_pool2d_k2_s1", (1, 3, 5, 6), (2, 2), (1, 1)),
    ("avg_pool2d_k3_s2", (2, 2, 7, 8), (3, 3), (2, 2)),
    ("avg_pool2d_k2_s2_odd", (1, 3, 5, 7), (2, 2), (2, 2)),
    ("max_pool1d_k3_s2", (2, 3, 10), (3,), (2,)),
]
for name, xs, k, stride in pool_cases:
    x = torch.randn(*xs).requires_grad_()
    pads = pads_for(xs[2:], k, stride, (1,) * len(k))
    if name.startswith("max_pool1d"):
        y = F.max_pool1d(F.pad(x, pads, value=-math.inf), k, stride)
    elif name.startswith("max"):
        y = F.max_pool2d(F.pad(x, pads, value=-math.inf), k, stride)
    else:
        sums = F.avg_pool2d(F.pad(x, pads), k, stride, divisor_override=1)
        counts = F.avg_pool2d(F.pad(torch.ones(1, 1, *xs[2:]), pads), k, stride, divisor_override=1)
        y = sums / counts
    assert list(y.shape[2:]) == [math.ceil(n / s) for n, s in zip(xs[2:], stride)]
    finish(name, x, y, list(k) + list(stride) + [1] * len(k))
