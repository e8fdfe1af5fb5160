#!/usr/bin/python3
"""Reference values for Kiln's convolution and pooling, from PyTorch (Debian python3-torch 1.13), float32.

Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_conv_golden.py
Writes tests/golden/conv/*.npy, read by tests/tensor/conv_test.cpp, tests/tensor/pool_test.cpp and
tests/autograd/gradcheck_conv.cpp. CI only reads them; it never runs PyTorch.
@generated files: every .npy under tests/golden/conv/ comes from this script.

Each case <name> saves its inputs (<name>_x, _w, _b), its hyper-parameters as an int64 vector
(<name>_params, layouts below), the output (<name>_y; max pools also <name>_indices), a seeded upstream
gradient <name>_dy and the gradients of sum(y * dy): <name>_dx, _dw, _db.
  conv params:   [stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups]  (1-D: h = 1, 0, 1)
  pool params:   [kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w]               (1-D: h = 1, 1, 0)
  adaptive:      [out_h, out_w]
"""
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

out = pathlib.Path(__file__).resolve().parent / "conv"
out.mkdir(exist_ok=True)
torch.manual_seed(0)


def save(name, t):
    np.save(out / f"{name}.npy", t.detach().numpy() if isinstance(t, torch.Tensor) else t)


def leaf(*shape):
    return torch.randn(*shape).requires_grad_()


def finish(name, y, params, tensors):
    """Saves params, y, a seeded dy, and the input gradients of sum(y * dy)."""
    save(f"{name}_params", np.array(params, dtype=np.int64))
    save(f"{name}_y", y)
    dy = torch.randn(y.shape)
    save(f"{name}_dy", dy)
    y.backward(dy)
    for key, t in tensors.items():
        save(f"{name}_{key}", t)
        save(f"{name}_d{key}", t.grad)


# ---- conv2d: x (B, C, H, W), w (K, C/groups, kh, kw), stride, padding, dilation, groups, bias?
conv2d_cases = [
    ("conv2d_basic", (2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    ("conv2d_strided_grouped", (2, 4, 9, 8), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2, True),
    ("conv2d_depthwise", (2, 4, 8, 7), (4, 1, 3, 3), (2, 2), (1, 1), (1, 1), 4, True),
    ("conv2d_depthwise_mult", (1, 3, 9, 9), (6, 1, 3, 3), (1, 1), (2, 2), (2, 2), 3, False),
    ("conv2d_pointwise", (3, 5, 4, 5), (7, 5, 1, 1), (1, 1), (0, 0), (1, 1), 1, False),
]
for name, xs, ws, stride, pad, dil, groups, bias in conv2d_cases:
    x, w = leaf(*xs), leaf(*ws)
    b = leaf(ws[0]) if bias else None
    y = F.conv2d(x, w, b, stride, pad, dil, groups)
    tensors = {"x": x, "w": w}
    if bias:
        tensors["b"] = b
    finish(name, y, [*stride, *pad, *dil, groups], tensors)

# ---- conv1d: x (B, C, L), w (K, C/groups, k); the depthwise case is NAS-BERT's separable conv.
conv1d_cases = [
    ("conv1d_grouped", (2, 6, 11), (4, 3, 3), 2, 1, 1, 2, True),
    ("conv1d_dilated", (1, 3, 13), (5, 3, 4), 1, 2, 3, 1, False),
    ("conv1d_depthwise", (2, 8, 16), (8, 1, 5), 1, 2, 1, 8, True),
]
for name, xs, ws, stride, pad, dil, groups, bias in conv1d_cases:
    x, w = leaf(*xs), leaf(*ws)
    b = leaf(ws[0]) if bias else None
    y = F.conv1d(x, w, b, stride, pad, dil, groups)
    tensors = {"x": x, "w": w}
    if bias:
        tensors["b"] = b
    finish(name, y, [1, stride, 0, pad, 1, dil, groups], tensors)

# ---- pooling: x (B, C, H, W) or (B, C, L).
x = leaf(2, 3, 9, 8)
y, idx = F.max_pool2d(x, (3, 2), (2, 2), (1, 1), return_indices=True)
save("max_pool2d_indices", idx)
finish("max_pool2d", y, [3, 2, 2, 2, 1, 1], {"x": x})

x = leaf(2, 3, 11)
y, idx = F.max_pool1d(x, 3, 2, 1, return_indices=True)
save("max_pool1d_indices", idx)
finish("max_pool1d", y, [1, 3, 1, 2, 0, 1], {"x": x})

x = leaf(2, 3, 9, 8)
y = F.avg_pool2d(x, (3, 3), (2, 1), (1, 1), count_include_pad=True)
finish("avg_pool2d", y, [3, 3, 2, 1, 1, 1], {"x": x})

x = leaf(2, 3, 10, 7)
y = F.adaptive_avg_pool2d(x, (4, 3))
finish("adaptive_avg_pool2d", y, [4, 3], {"x": x})

x = leaf(1, 2, 5, 6)
y = F.adaptive_avg_pool2d(x, (7, 4))  # more outputs than inputs along H: overlapping bins
finish("adaptive_avg_pool2d_up", y, [7, 4], {"x": x})
