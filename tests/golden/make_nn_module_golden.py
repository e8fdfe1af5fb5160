#!/usr/bin/python3
"""Writes tests/golden/nn_modules/: PyTorch 1.13 modules' state_dicts, inputs, outputs and gradients that
tests/nn/module_golden_test.cpp loads BY NAME into Kiln modules and compares. Matching proves that the
parameter names, their layouts (e.g. LSTM gate order i, f, g, o) and the math agree with PyTorch.
Run with Debian's interpreter (python3-torch 1.13):

    /usr/bin/python3 tests/golden/make_nn_module_golden.py

Each case is a folder <case>/ of float32 / int64 / bool .npy files:
    state.<state_dict key>.npy   the module's state before the forward passes
    in.<name>.npy                inputs (and masks)
    out.<name>.npy               outputs
    probe.<name>.npy             fixed random weights R; the scalar loss is Σ_outputs Σ(out · R)
    grad.<name>.npy              d loss / d (parameter <state key> | input <name>)
    after.<key>.npy              state after the passes (BatchNorm running statistics)
Modules run in training mode with dropout 0, which keeps PyTorch off its fused inference fast paths
(nested tensors, _transformer_encoder_layer_fwd) that Kiln does not mirror.
"""
import pathlib
import shutil

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent / "nn_modules"


def save(folder, name, t):
    arr = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    np.save(folder / f"{name}.npy", arr)


def new_case(name):
    folder = OUT / name
    folder.mkdir(parents=True)
    return folder


def run_case(name, module, inputs, forward, grad_inputs=()):
    """inputs: dict name -> tensor (saved as in.*); forward(module, inputs) -> dict name -> output tensor.
    Gradients are taken w.r.t. every parameter and the inputs named in grad_inputs."""
    folder = new_case(name)
    for k, v in module.state_dict().items():
        save(folder, f"state.{k}", v)
    for k, v in inputs.items():
        save(folder, f"in.{k}", v)
        if k in grad_inputs:
            v.requires_grad_(True)
    outs = forward(module, inputs)
    loss = 0
    g = torch.Generator().manual_seed(1234)
    for k, v in outs.items():
        save(folder, f"out.{k}", v)
        probe = torch.randn(v.shape, generator=g)
        save(folder, f"probe.{k}", probe)
        loss = loss + (v * probe).sum()
    loss.backward()
    for k, p in module.named_parameters():
        save(folder, f"grad.{k}", p.grad)
    for k in grad_inputs:
        save(folder, f"grad.{k}", inputs[k].grad)
    return folder


def randn(*shape):
    return torch.randn(*shape)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    # ---- Linear, Conv ----
    run_case("linear", nn.Linear(5, 3), {"x": randn(4, 5)}, lambda m, i: {"y": m(i["x"])}, ["x"])
    conv = nn.Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    run_case("conv2d", conv, {"x": randn(2, 4, 7, 8)}, lambda m, i: {"y": m(i["x"])}, ["x"])
    conv_same = nn.Conv2d(3, 4, kernel_size=4, padding="same")
    run_case("conv2d_same_even_kernel", conv_same, {"x": randn(2, 3, 6, 5)}, lambda m, i: {"y": m(i["x"])}, ["x"])
    run_case("conv1d", nn.Conv1d(3, 5, 3, stride=2, padding=1), {"x": randn(2, 3, 9)},
             lambda m, i: {"y": m(i["x"])}, ["x"])

    # ---- RNNs ----
    lstm = nn.LSTM(5, 4, num_layers=2, bidirectional=True, batch_first=True)

    def lstm_fwd(m, i):
        y, (h, c) = m(i["x"], (i["h0"], i["c0"]))
        return {"output": y, "h_n": h, "c_n": c}

    run_case("lstm_bidir_2layer_batch_first", lstm, {"x": randn(3, 6, 5), "h0": randn(4, 3, 4), "c0": randn(4, 3, 4)},
             lstm_fwd, ["x", "h0", "c0"])
    gru = nn.GRU(5, 4, num_layers=2, bidirectional=True)

    def gru_fwd(m, i):
        y, h = m(i["x"])
        return {"output": y, "h_n": h}

    run_case("gru_bidir_2layer_seq_first", gru, {"x": randn(6, 3, 5)}, gru_fwd, ["x"])

    # ---- attention ----
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        mha.in_proj_bias.normal_(0, 0.1)
        mha.out_proj.bias.normal_(0, 0.1)
    kpm = torch.tensor([[False, False, False, True, True], [False, False, False, False, True]])
    attn_mask = randn(4, 5) * 0.5

    def mha_fwd(m, i):
        y, _ = m(i["query"], i["key"], i["value"], key_padding_mask=i["key_padding_mask"], attn_mask=i["attn_mask"],
                 need_weights=False)
        return {"y": y}

    run_case("mha_cross_batch_first_masks", mha,
             {"query": randn(2, 4, 8), "key": randn(2, 5, 8), "value": randn(2, 5, 8), "key_padding_mask": kpm,
              "attn_mask": attn_mask}, mha_fwd, ["query", "key", "value"])
    mha2 = nn.MultiheadAttention(8, 4)
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)

    def mha_self(m, i):
        y, _ = m(i["x"], i["x"], i["x"], attn_mask=i["attn_mask"], need_weights=False)
        return {"y": y}

    run_case("mha_self_seq_first_causal", mha2, {"x": randn(5, 2, 8), "attn_mask": causal}, mha_self, ["x"])

    # ---- transformer ----
    def bump_norms(m):
        # Non-trivial LayerNorm affine parameters, so a swapped norm1/norm2 would show.
        with torch.no_grad():
            for name, p in m.named_parameters():
                if "norm" in name or name.endswith("bias"):
                    p.add_(torch.randn(p.shape) * 0.1)

    tel = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    bump_norms(tel)
    pad = torch.tensor([[False, False, False, False, True, True], [False, False, False, False, False, False]])
    run_case("tel_post_ln_relu_batch_first", tel, {"src": randn(2, 6, 8), "src_key_padding_mask": pad},
             lambda m, i: {"y": m(i["src"], src_key_padding_mask=i["src_key_padding_mask"])}, ["src"])
    tel2 = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation="gelu", norm_first=True)
    bump_norms(tel2)
    causal6 = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    run_case("tel_pre_ln_gelu_seq_first", tel2, {"src": randn(6, 2, 8), "src_mask": causal6},
             lambda m, i: {"y": m(i["src"], src_mask=i["src_mask"])}, ["src"])
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(8), enable_nested_tensor=False)
    bump_norms(enc)
    run_case("encoder_2layer_pre_ln_final_norm", enc, {"src": randn(2, 6, 8), "src_key_padding_mask": pad},
             lambda m, i: {"y": m(i["src"], src_key_padding_mask=i["src_key_padding_mask"])}, ["src"])

    # ---- normalisation: BatchNorm train, train, then eval ----
    bn = nn.BatchNorm2d(3, momentum=0.2)
    with torch.no_grad():
        bn.weight.normal_(1, 0.2)
        bn.bias.normal_(0, 0.2)

    def bn_fwd(m, i):
        m.train()
        y1 = m(i["x1"])
        y2 = m(i["x2"])
        m.eval()
        y3 = m(i["x3"])
        return {"y1": y1, "y2": y2, "y3": y3}

    folder = run_case("batchnorm2d_train_then_eval", bn,
                      {"x1": randn(4, 3, 5, 5) * 2 + 1, "x2": randn(4, 3, 5, 5) - 0.5, "x3": randn(2, 3, 5, 5)},
                      bn_fwd, ["x1"])
    for k, v in bn.state_dict().items():
        save(folder, f"after.{k}", v)
    bn1 = nn.BatchNorm1d(4, momentum=None)

    def bn1_fwd(m, i):
        y1 = m(i["x1"])
        y2 = m(i["x2"])
        return {"y1": y1, "y2": y2}

    folder = run_case("batchnorm1d_cumulative_average", bn1, {"x1": randn(3, 4, 6), "x2": randn(5, 4, 6) * 3}, bn1_fwd,
                      ["x1"])
    for k, v in bn1.state_dict().items():
        save(folder, f"after.{k}", v)
    ln = nn.LayerNorm([4, 5])
    with torch.no_grad():
        ln.weight.normal_(1, 0.2)
        ln.bias.normal_(0, 0.2)
    run_case("layernorm_2d_shape", ln, {"x": randn(2, 3, 4, 5)}, lambda m, i: {"y": m(i["x"])}, ["x"])
    emb = nn.Embedding(10, 4, padding_idx=2)
    ids = torch.tensor([[1, 2, 3, 2, 9], [0, 0, 5, 7, 2], [4, 6, 8, 1, 3]])
    run_case("embedding_padding_idx", emb, {"ids": ids}, lambda m, i: {"y": m(i["ids"])})

    losses()
    (OUT / "README").write_text(f"@generated by tests/golden/make_nn_module_golden.py (PyTorch {torch.__version__}). "
                                "Do not edit; re-run the script. Layout: see the script's docstring.\n")
    print(f"wrote {sum(1 for _ in OUT.rglob('*.npy'))} files under {OUT}")


def losses():
    """losses/<name>_<reduction>.npy with inputs in.*.npy and grad_<name>_<reduction>.npy (d sum(loss·R)/d input)."""
    folder = new_case("losses")
    g = torch.Generator().manual_seed(7)
    B, K = 6, 5
    logits = torch.randn(B, K, generator=g)
    target = torch.tensor([0, 3, 4, 1, 3, 2])
    target_ignore = torch.tensor([0, 3, -100, 1, 3, 2])
    cw = torch.rand(K, generator=g) + 0.5
    probs = torch.rand(B, K, generator=g) * 0.98 + 0.01
    bin_target = (torch.rand(B, K, generator=g) > 0.5).float()
    soft_target = torch.rand(B, K, generator=g)
    bw = torch.rand(B, K, generator=g) + 0.5
    pos_weight = torch.rand(K, generator=g) * 3
    big_logits = logits * 30  # exercises the stable form
    x = torch.randn(B, K, generator=g)
    y = torch.randn(B, K, generator=g)
    x1 = torch.randn(B, 7, generator=g)
    x2 = torch.randn(B, 7, generator=g)
    cos_t = torch.tensor([1, -1, 1, -1, -1, 1])
    for n, t in dict(logits=logits, target=target, target_ignore=target_ignore, class_weight=cw, probs=probs,
                     bin_target=bin_target, soft_target=soft_target, bce_weight=bw, pos_weight=pos_weight,
                     big_logits=big_logits, x=x, y=y, x1=x1, x2=x2, cos_target=cos_t).items():
        save(folder, f"in.{n}", t)
    cases = {
        "cross_entropy": (lambda a, r: F.cross_entropy(a, target, reduction=r), logits),
        "cross_entropy_weight_ignore_smooth": (
            lambda a, r: F.cross_entropy(a, target_ignore, weight=cw, label_smoothing=0.1, reduction=r), logits),
        "cross_entropy_prob_target_smooth": (
            lambda a, r: F.cross_entropy(a, soft_target.softmax(1), weight=cw, label_smoothing=0.2, reduction=r), logits),
        "nll_loss_weight": (lambda a, r: F.nll_loss(a.log_softmax(1), target, weight=cw, reduction=r), logits),
        "bce_weight": (lambda a, r: F.binary_cross_entropy(a, bin_target, weight=bw, reduction=r), probs),
        "bce_with_logits_pos_weight": (
            lambda a, r: F.binary_cross_entropy_with_logits(a, bin_target, weight=bw, pos_weight=pos_weight,
                                                            reduction=r), big_logits),
        "bce_with_logits_soft": (lambda a, r: F.binary_cross_entropy_with_logits(a, soft_target, reduction=r), logits),
        "mse": (lambda a, r: F.mse_loss(a, y, reduction=r), x),
        "l1": (lambda a, r: F.l1_loss(a, y, reduction=r), x),
        "smooth_l1_beta_half": (lambda a, r: F.smooth_l1_loss(a, y, beta=0.5, reduction=r), x),
        "huber_delta_07": (lambda a, r: F.huber_loss(a, y, delta=0.7, reduction=r), x),
        "cosine_embedding_margin": (lambda a, r: F.cosine_embedding_loss(a, x2, cos_t, margin=0.2, reduction=r), x1),
    }
    for name, (fn, inp) in cases.items():
        for r in ("none", "mean", "sum"):
            a = inp.clone().requires_grad_(True)
            loss = fn(a, r)
            probe = torch.randn(loss.shape, generator=g)
            save(folder, f"out.{name}_{r}", loss)
            save(folder, f"probe.{name}_{r}", probe)
            (loss * probe).sum().backward()
            save(folder, f"grad.{name}_{r}", a.grad)


if __name__ == "__main__":
    main()
