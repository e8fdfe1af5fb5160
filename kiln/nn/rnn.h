#pragma once
// LSTM and GRU, multi-layer and bidirectional, parameter-compatible with torch.nn.LSTM /
// torch.nn.GRU. Built from differentiable ops (linear, sigmoid, tanh, mul, add, stack, cat), so
// gradients come free. Legend: T = time steps, B = batch, I = input_size, H = hidden_size, L =
// num_layers, D = 2 if bidirectional else 1, G = gates (LSTM 4: i, f, g, o; GRU 3: r, z, n —
// PyTorch's order).
#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

struct RNNOptions {
  RNNOptions(int64_t input_size, int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  KILN_ARG(int64_t, input_size);
  KILN_ARG(int64_t, hidden_size);
  KILN_ARG(int64_t, num_layers) = 1;
  /// bias_ih_l* and bias_hh_l*.
  KILN_ARG(bool, bias) = true;
  /// true: input / output (B, T, ·); false (PyTorch's default): (T, B, ·). h_n / c_n are (L·D, B,
  /// H) either way.
  KILN_ARG(bool, batch_first) = false;
  /// Dropout on each layer's output except the last (training only).
  KILN_ARG(double, dropout) = 0.0;
  KILN_ARG(bool, bidirectional) = false;
  /// Random source for the inter-layer dropout (nullptr = the default generator).
  KILN_ARG(Generator*, generator) = nullptr;
};
using LSTMOptions = RNNOptions;
using GRUOptions = RNNOptions;

/// The sequence output and the final states.
struct RNNOutput {
  Tensor output;  // (T, B, D·H), or (B, T, D·H) with batch_first
  Tensor h_n;     // (L·D, B, H): layer-major, forward before reverse
  Tensor c_n;     // LSTM only: (L·D, B, H)
};

/// Shared parameters and layer loop. Parameters, per layer k and direction (suffix "" /
/// "_reverse"), in PyTorch's order: weight_ih_l{k} (G·H, I or D·H), weight_hh_l{k} (G·H, H),
/// bias_ih_l{k} (G·H), bias_hh_l{k} (G·H). Default init as PyTorch: every parameter ~ U(−1/√H,
/// 1/√H).
class RNNBase : public Module {
 public:
  void reset_parameters(Generator* gen = nullptr) override;
  std::string extra_repr() const override;
  const RNNOptions& options() const { return options_; }

 protected:
  RNNBase(std::string type_name, RNNOptions options, int64_t gates);
  /// Runs every layer and direction. x: as the options say; h0 / c0: (L·D, B, H) or undefined
  /// (zeros); unbatched x (T, I) takes h0 (L·D, H).
  RNNOutput run(const Tensor& x, const Tensor& h0, const Tensor& c0, bool lstm);
  /// One direction of one layer over time-major x (T, B, in): returns outputs (T, B, H), final h
  /// and c.
  virtual RNNOutput run_direction(const Tensor& x, int64_t layer, bool reverse, Tensor h,
                                  Tensor c) = 0;
  /// The four parameters of (layer, direction): w_ih, w_hh, b_ih, b_hh (biases undefined without
  /// bias).
  struct Weights {
    Tensor w_ih, w_hh, b_ih, b_hh;
  };
  const Weights& weights(int64_t layer, bool reverse) const {
    return weights_[layer * directions() + reverse];
  }
  int64_t directions() const { return options_.bidirectional() ? 2 : 1; }
  RNNOptions options_;

 private:
  std::vector<Weights> weights_;
};

/// Hochreiter & Schmidhuber (1997), with PyTorch's equations:
///   i = σ(W_ii x + b_ii + W_hi h + b_hi)   f = σ(W_if x + b_if + W_hf h + b_hf)
///   g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
///   c' = f ⊙ c + i ⊙ g   h' = o ⊙ tanh(c')
class LSTM : public RNNBase {
 public:
  explicit LSTM(LSTMOptions options) : RNNBase("LSTM", std::move(options), 4) {}
  /// The output sequence (zero initial states).
  Tensor forward(const Tensor& x) override { return forward_with_state(x).output; }
  /// inputs = {x, h0, c0}; h0 / c0 may be omitted or undefined (zeros). Returns the output
  /// sequence.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  /// Output and final states (h_n, c_n).
  RNNOutput forward_with_state(const Tensor& x, const Tensor& h0 = {}, const Tensor& c0 = {});

 protected:
  RNNOutput run_direction(const Tensor& x, int64_t layer, bool reverse, Tensor h,
                          Tensor c) override;
};

/// Cho et al. (2014), with PyTorch's equations:
///   r = σ(W_ir x + b_ir + W_hr h + b_hr)   z = σ(W_iz x + b_iz + W_hz h + b_hz)
///   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   h' = (1 − z) ⊙ n + z ⊙ h
class GRU : public RNNBase {
 public:
  explicit GRU(GRUOptions options) : RNNBase("GRU", std::move(options), 3) {}
  Tensor forward(const Tensor& x) override { return forward_with_state(x).output; }
  /// inputs = {x, h0}; h0 may be omitted or undefined (zeros). Returns the output sequence.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  /// Output and final state h_n (c_n undefined).
  RNNOutput forward_with_state(const Tensor& x, const Tensor& h0 = {});

 protected:
  RNNOutput run_direction(const Tensor& x, int64_t layer, bool reverse, Tensor h,
                          Tensor c) override;
};

}  // namespace kiln::nn
