#!/usr/bin/python3
"""Reference values for Kiln's vision code (kiln/vision), from PyTorch (Debian python3-torch 1.13).

Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_vision_golden.py
Writes tests/golden/vision/*.npy, read by tests/vision/transforms_test.cpp and
tests/vision/models_test.cpp. CI only reads them; it never runs PyTorch.
@generated files: every .npy under tests/golden/vision/ comes from this script.

resize_<k>_x / resize_<k>_y: float32 (C, H, W) input and F.interpolate(x[None], size,
    mode="bilinear", align_corners=False)[0].
affine_<k>_x / affine_<k>_y / affine_<k>_params: float32 (C, H, W) input, the warp by
    F.grid_sample(x[None], F.affine_grid(theta, align_corners=True), mode="bilinear",
    padding_mode="zeros", align_corners=True)[0], and [angle_deg, tx, ty, scale] (float64): the
    inverse of Kiln's affine() (rotation about ((W-1)/2, (H-1)/2), counter-clockwise on screen,
    then scale, then translation in pixels) written in grid_sample's normalised coordinates.
model_<k>_state / _x / _eval / _train / _probe / _grads / _after: outputs and gradients of the
    small ResNet and MobileNet (cases 3 and 5) with random BatchNorm statistics; see "model
    numerics" below.
model_params: int64 vector, parameter counts (sum of p.numel() over parameters()) of the models
    below, in MODEL_CASES order; model_outputs: int64 (len(MODEL_CASES), 2), the output shape of
    each model on its input; model_<k>_names.txt: the parameter names of case k, one per line.
"""
import pathlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

out = pathlib.Path(__file__).resolve().parent / "vision"
out.mkdir(exist_ok=True)
torch.manual_seed(0)


def save(name, a):
    np.save(out / f"{name}.npy", a.detach().numpy() if isinstance(a, torch.Tensor) else a)


# ---------------------------------------------------------------- resize
RESIZE_CASES = [  # (C, H, W) -> (out_h, out_w)
    ((3, 7, 9), (14, 5)),
    ((1, 28, 28), (32, 32)),
    ((2, 10, 10), (4, 6)),
    ((3, 5, 4), (5, 4)),
    ((1, 13, 17), (7, 23)),
    ((1, 4, 4), (1, 1)),
]
for k, (shape, size) in enumerate(RESIZE_CASES):
    x = torch.rand(shape, dtype=torch.float32)
    y = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]
    save(f"resize_{k}_x", x)
    save(f"resize_{k}_y", y)


# ---------------------------------------------------------------- affine
AFFINE_CASES = [  # (C, H, W), angle_deg, tx, ty, scale
    ((3, 9, 11), 30.0, 1.5, -2.0, 1.2),
    ((1, 8, 8), -45.0, 0.0, 0.0, 1.0),
    ((2, 7, 5), 90.0, 0.0, 1.0, 0.8),
    ((1, 12, 10), 12.5, -0.75, 0.25, 1.0),
]
for k, (shape, angle, tx, ty, scale) in enumerate(AFFINE_CASES):
    C, H, W = shape
    x = torch.rand(shape, dtype=torch.float32)
    a = np.deg2rad(angle)
    # Pixel-space inverse map: src = c + M (dst - c - t), M = R^-1 / scale, R^-1 = [[cos, -sin],
    # [sin, cos]] in (x, y). Normalised coords (align_corners=True): p = c + D n, D = diag of half
    # extents, so n_src = (D^-1 M D) n_dst - D^-1 M t.
    M = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / scale
    D = np.diag([(W - 1) / 2.0, (H - 1) / 2.0])
    Dinv = np.linalg.inv(D)
    A = Dinv @ M @ D
    b = -Dinv @ M @ np.array([tx, ty])
    theta = torch.tensor(np.concatenate([A, b[:, None]], axis=1)[None], dtype=torch.float64)
    grid = F.affine_grid(theta, (1, C, H, W), align_corners=True)
    y = F.grid_sample(x[None].double(), grid, mode="bilinear", padding_mode="zeros",
                      align_corners=True)[0].float()
    save(f"affine_{k}_x", x)
    save(f"affine_{k}_y", y)
    save(f"affine_{k}_params", np.array([angle, tx, ty, scale], dtype=np.float64))


# ---------------------------------------------------------------- models (same architectures as
# kiln/vision/models.h)
def lenet(in_channels, num_classes, padding):
    side = 28 + 2 * padding if padding else 32
    s = ((side - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * s * s, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


def resnet(in_channels, num_classes, blocks, width):
    layers = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for i, n in enumerate(blocks):
        cout = width * 2 ** i
        for b in range(n):
            layers.append(BasicBlock(cin, cout, 2 if (i > 0 and b == 0) else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def mobilenet(in_channels, num_classes, width, stages, stem_stride):
    layers = [nn.Conv2d(in_channels, width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(width),
              nn.ReLU()]
    cin = width
    for cout, stride in stages:
        layers += [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                   nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


MODEL_CASES = [  # (model, input shape)
    (lenet(1, 10, 2), (2, 1, 28, 28)),
    (lenet(3, 10, 0), (2, 3, 32, 32)),
    (resnet(3, 10, [2, 2, 2], 16), (2, 3, 32, 32)),
    (resnet(1, 7, [1, 1], 8), (2, 1, 28, 28)),
    (mobilenet(3, 10, 32, [(64, 1), (128, 2), (128, 1), (256, 2)], 1), (2, 3, 32, 32)),
    (mobilenet(1, 10, 8, [(16, 1), (32, 2)], 2), (2, 1, 28, 28)),
]
params, outputs = [], []
for k, (model, shape) in enumerate(MODEL_CASES):
    (out / f"model_{k}_names.txt").write_text("".join(n + "\n" for n, _ in model.named_parameters()))
    params.append(sum(p.numel() for p in model.parameters()))
    outputs.append(list(model.eval()(torch.zeros(shape)).shape))
save("model_params", np.array(params, dtype=np.int64))
save("model_outputs", np.array(outputs, dtype=np.int64))
print("params", params, "outputs", outputs)


# ---------------------------------------------------------------- model numerics
# The small ResNet and MobileNet of MODEL_CASES (cases 3 and 5) on a (3, 1, 12, 12) input, with
# every BatchNorm affine parameter and running statistic drawn at random (so eval-mode BatchNorm is
# not near the identity). Written per case k, all float32:
#   model_<k>_state.npy: the state_dict's floating entries flattened and concatenated, in
#       state_dict order; model_<k>_state.txt: one "name d0,d1,..." line per entry, same order.
#   model_<k>_x.npy: the input.  model_<k>_eval.npy: eval-mode logits.
#   model_<k>_train.npy: train-mode logits of the same input (batch statistics).
#   model_<k>_probe.npy, model_<k>_grads.npy: d sum(train logits · probe) / d every parameter
#       (named_parameters order, flattened) followed by d / d input.
#   model_<k>_after.npy: the running statistics after that train-mode pass (momentum 0.1),
#       flattened like model_<k>_state (running_mean, running_var entries only, in order).
NUMERIC_CASES = [3, 5]
gen = torch.Generator().manual_seed(1234)
for k in NUMERIC_CASES:
    model = MODEL_CASES[k][0]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.5)
    state = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point()]
    save(f"model_{k}_state", torch.cat([t.reshape(-1) for _, t in state]).float())
    (out / f"model_{k}_state.txt").write_text(
        "".join(f"{n} {','.join(str(d) for d in t.shape)}\n" for n, t in state))
    x = torch.randn((3, 1, 12, 12), generator=gen)
    save(f"model_{k}_x", x)
    model.eval()
    with torch.no_grad():
        save(f"model_{k}_eval", model(x))
    model.train()
    xg = x.clone().requires_grad_()
    y = model(xg)
    probe = torch.randn(y.shape, generator=gen)
    (y * probe).sum().backward()
    save(f"model_{k}_train", y)
    save(f"model_{k}_probe", probe)
    grads = [p.grad.reshape(-1) for _, p in model.named_parameters()] + [xg.grad.reshape(-1)]
    save(f"model_{k}_grads", torch.cat(grads))
    after = [t.reshape(-1) for n, t in model.state_dict().items()
             if n.endswith("running_mean") or n.endswith("running_var")]
    save(f"model_{k}_after", torch.cat(after).float())
    print(f"model {k}: {sum(t.numel() for _, t in state)} state values, logits {tuple(y.shape)}")
