#!/usr/bin/python3
"""Reference values for Kiln's core kernels, from PyTorch (Debian python3-torch 1.13).

Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_core_golden.py
Writes tests/golden/core/*.npy. CI only reads them; it never runs PyTorch.
@generated files: every .npy under tests/golden/core/ comes from this script."""
import pathlib

import numpy as np
import torch

out = pathlib.Path(__file__).resolve().parent / "core"
out.mkdir(exist_ok=True)
torch.manual_seed(0)


def save(name, t):
    np.save(out / f"{name}.npy", t.detach().numpy() if isinstance(t, torch.Tensor) else t)


# Elementwise unary ops over a spread of float32 inputs.
x = torch.linspace(-6, 6, 1001, dtype=torch.float32)
xp = torch.linspace(0.01, 8, 1001, dtype=torch.float32)
save("x", x)
save("xp", xp)
save("exp", torch.exp(x))
save("tanh", torch.tanh(x))
save("sigmoid", torch.sigmoid(x))
save("gelu", torch.nn.functional.gelu(x))
save("gelu_tanh", torch.nn.functional.gelu(x, approximate="tanh"))
save("silu", torch.nn.functional.silu(x))
save("erf", torch.erf(x))
save("sin", torch.sin(x))
save("log", torch.log(xp))
save("sqrt", torch.sqrt(xp))
save("rsqrt", torch.rsqrt(xp))
# Activation gradients (d/dx of sum(f(x))).
for name, fn in [("gelu", torch.nn.functional.gelu), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid),
                 ("silu", torch.nn.functional.silu),
                 ("gelu_tanh", lambda t: torch.nn.functional.gelu(t, approximate="tanh"))]:
    xx = x.clone().requires_grad_()
    fn(xx).sum().backward()
    save(f"{name}_grad", xx.grad)

# Broadcast binary ops and promotion.
a = torch.randn(4, 1, 5)
b = torch.randn(3, 1)
save("bin_a", a)
save("bin_b", b)
save("bin_add", a + b)
save("bin_mul", a * b)
save("bin_div", a / (b.abs() + 0.5))
save("bin_pow", a.abs().pow(b))

# Reductions.
r = torch.randn(6, 7, 8)
save("red_x", r)
save("red_sum_02", r.sum(dim=(0, 2)))
save("red_mean_1", r.mean(dim=1))
save("red_var_2", r.var(dim=2))
save("red_std_all", r.std())
save("red_logsumexp_1", torch.logsumexp(r, dim=1))
save("red_norm_2", r.norm(dim=2))
save("red_amax_0", r.amax(dim=0))
save("red_argmax_1", r.argmax(dim=1))

# matmul with batch broadcasting.
ma = torch.randn(2, 1, 5, 7)
mb = torch.randn(3, 7, 4)
save("mm_a", ma)
save("mm_b", mb)
save("mm_out", ma @ mb)
print(f"wrote {len(list(out.glob('*.npy')))} files to {out}")
