#!/usr/bin/python3
"""Reference values for Kiln's neural-network ops, from PyTorch (Debian python3-torch 1.13), float32.

Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_nn_golden.py
Writes tests/golden/nn/*.npy, read by tests/autograd/nn_ops_test.cpp. CI only reads them; it never runs
PyTorch. @generated files: every .npy under tests/golden/nn/ comes from this script.

Each case saves its inputs, the op's output and the gradients of sum(output * dy) for a seeded dy
(losses reduced to a scalar use dy = 1), so the C++ test replays exactly the same computation.
"""
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

out = pathlib.Path(__file__).resolve().parent / "nn"
out.mkdir(exist_ok=True)
torch.manual_seed(0)


def save(name, t):
    np.save(out / f"{name}.npy", t.detach().numpy() if isinstance(t, torch.Tensor) else t)


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_()


def backward_with(y, name):
    """Back-propagates sum(y * dy) with a seeded dy (saved as <name>_dy); returns dy."""
    dy = torch.randn(y.shape) if y.dim() > 0 else torch.tensor(1.0)
    save(f"{name}_dy", dy)
    y.backward(dy)
    return dy


# ---- softmax / log_softmax: the last dim, an inner dim, and large-magnitude logits.
for fn_name, fn in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
    for label, shape, dim, scale in [("last", (6, 33), -1, 3.0), ("dim1", (3, 9, 5), 1, 3.0),
                                     ("big", (4, 17), -1, 40.0)]:
        name = f"{fn_name}_{label}"
        x = leaf(*shape, scale=scale)
        y = fn(x, dim=dim)
        save(f"{name}_x", x)
        save(f"{name}_y", y)
        backward_with(y, name)
        save(f"{name}_dx", x.grad)

# ---- layer_norm: normalised over the last dim and over the last two, with weight and bias.
for label, shape, ns in [("last", (5, 3, 16), (16,)), ("last2", (4, 6, 8), (6, 8))]:
    name = f"layer_norm_{label}"
    x = leaf(*shape, scale=2.0)
    with torch.no_grad():
        x += 1.5  # a mean away from zero
    w = leaf(*ns)
    b = leaf(*ns)
    y = F.layer_norm(x, ns, w, b, eps=1e-5)
    for k, v in [("x", x), ("w", w), ("b", b), ("y", y)]:
        save(f"{name}_{k}", v)
    backward_with(y, name)
    save(f"{name}_dx", x.grad)
    save(f"{name}_dw", w.grad)
    save(f"{name}_db", b.grad)

# ---- cross_entropy: class weights + ignore_index + label smoothing, each reduction; (B, K, d1, d2) too.
ce_cases = [
    # label, logits shape, weighted, ignore_index, label_smoothing
    ("plain", (10, 7), False, -100, 0.0),
    ("weighted", (10, 7), True, -100, 0.0),
    ("w_ignore_smooth", (12, 7), True, 3, 0.1),
    ("ignore_smooth", (12, 7), False, 3, 0.2),
    ("spatial", (3, 5, 4, 2), True, 1, 0.15),
]
for label, shape, weighted, ignore_index, ls in ce_cases:
    K = shape[1]
    tshape = (shape[0],) + tuple(shape[2:])
    target = torch.randint(0, K, tshape)
    if ignore_index >= 0:
        target.view(-1)[::4] = ignore_index  # every 4th row ignored
    weight = torch.rand(K) + 0.5 if weighted else None
    base = leaf(*shape, scale=2.0)
    save(f"ce_{label}_x", base)
    save(f"ce_{label}_t", target)
    if weighted:
        save(f"ce_{label}_w", weight)
    for reduction in ["none", "mean", "sum"]:
        name = f"ce_{label}_{reduction}"
        x = base.detach().clone().requires_grad_()
        y = F.cross_entropy(x, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                            label_smoothing=ls)
        save(f"{name}_y", y)
        backward_with(y, name)
        save(f"{name}_dx", x.grad)

# ---- nll_loss over log-probabilities with weights and an ignored class.
lp = F.log_softmax(torch.randn(9, 6) * 2, dim=1).detach().requires_grad_()
nt = torch.randint(0, 6, (9,))
nt[::3] = 2
nw = torch.rand(6) + 0.5
save("nll_x", lp)
save("nll_t", nt)
save("nll_w", nw)
for reduction in ["none", "mean", "sum"]:
    x = lp.detach().clone().requires_grad_()
    y = F.nll_loss(x, nt, weight=nw, ignore_index=2, reduction=reduction)
    save(f"nll_{reduction}_y", y)
    backward_with(y, f"nll_{reduction}")
    save(f"nll_{reduction}_dx", x.grad)

# ---- batch_norm: (B, C, L) training (batch stats, running buffers updated) and eval (running stats).
for label, training in [("train", True), ("eval", False)]:
    name = f"bn_{label}"
    x = leaf(6, 4, 5, scale=2.0)
    with torch.no_grad():
        x += 0.7
    w = leaf(4)
    b = leaf(4)
    rm = torch.randn(4) * 0.5
    rv = torch.rand(4) + 0.5
    for k, v in [("x", x), ("w", w), ("b", b), ("rm0", rm), ("rv0", rv)]:
        save(f"{name}_{k}", v)
    y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.1, eps=1e-5)
    save(f"{name}_y", y)
    save(f"{name}_rm1", rm)  # updated in place when training
    save(f"{name}_rv1", rv)
    backward_with(y, name)
    save(f"{name}_dx", x.grad)
    save(f"{name}_dw", w.grad)
    save(f"{name}_db", b.grad)

# ---- attention with a key-padding mask (B, 1, 1, Tk): batch 1 has its last 3 keys padded (-inf).
B, H, Tq, Tk, d = 2, 3, 5, 7, 8
q, k, v = leaf(B, H, Tq, d), leaf(B, H, Tk, d), leaf(B, H, Tk, d)
mask = torch.zeros(B, 1, 1, Tk)
mask[1, :, :, Tk - 3:] = float("-inf")
scores = q @ k.transpose(-1, -2) / d ** 0.5 + mask
y = torch.softmax(scores, dim=-1) @ v
for kk, vv in [("q", q), ("k", k), ("v", v), ("mask", mask), ("y", y)]:
    save(f"attn_{kk}", vv)
backward_with(y, "attn")
save("attn_dq", q.grad)
save("attn_dk", k.grad)
save("attn_dv", v.grad)

print(f"wrote {len(list(out.glob('*.npy')))} files to {out}")
