#include "kiln/nn/rnn.h"

#include <cmath>

#include "kiln/nn/init.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

RNNBase::RNNBase(std::string type_name, RNNOptions options, int64_t gates)
    : Module(std::move(type_name)), options_(std::move(options)) {
  const auto& o = options_;
  KILN_CHECK(o.input_size() > 0 && o.hidden_size() > 0 && o.num_layers() > 0,
             "{}: input_size, hidden_size and num_layers must be positive, got {}, {}, {}", name(),
             o.input_size(), o.hidden_size(), o.num_layers());
  KILN_CHECK(o.dropout() >= 0 && o.dropout() < 1, "{}: dropout must be in [0, 1), got {}", name(),
             o.dropout());
  const int64_t H = o.hidden_size(), D = directions();
  for (int64_t layer = 0; layer < o.num_layers(); ++layer) {
    const int64_t in = layer == 0 ? o.input_size() : D * H;
    for (int64_t dir = 0; dir < D; ++dir) {
      std::string sfx = fmt::format("_l{}{}", layer, dir ? "_reverse" : "");
      Weights w;
      w.w_ih = register_parameter("weight_ih" + sfx, zeros({gates * H, in}));
      w.w_hh = register_parameter("weight_hh" + sfx, zeros({gates * H, H}));
      if (o.bias()) {
        w.b_ih = register_parameter("bias_ih" + sfx, zeros({gates * H}));
        w.b_hh = register_parameter("bias_hh" + sfx, zeros({gates * H}));
      }
      weights_.push_back(w);
    }
  }
  reset_parameters();
}

void RNNBase::reset_parameters(Generator* gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(options_.hidden_size()));
  for (auto& w : weights_)
    for (Tensor* t : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh})
      if (t->defined()) init::uniform_(*t, -bound, bound, gen);
}

std::string RNNBase::extra_repr() const {
  const auto& o = options_;
  std::string s = fmt::format("{}, {}", o.input_size(), o.hidden_size());
  if (o.num_layers() != 1) s += fmt::format(", num_layers={}", o.num_layers());
  if (!o.bias()) s += ", bias=false";
  if (o.batch_first()) s += ", batch_first=true";
  if (o.dropout() != 0) s += fmt::format(", dropout={}", o.dropout());
  if (o.bidirectional()) s += ", bidirectional=true";
  return s;
}

RNNOutput RNNBase::run(const Tensor& x, const Tensor& h0, const Tensor& c0, bool lstm) {
  const auto& o = options_;
  const int64_t H = o.hidden_size(), L = o.num_layers(), D = directions();
  KILN_CHECK_SHAPE(
      x.defined() && (x.dim() == 3 || x.dim() == 2) && x.size(-1) == o.input_size(),
      "{}: input must be {} (or unbatched (T, I)) with I = input_size = {}, got shape {}", where(),
      o.batch_first() ? "(B, T, I)" : "(T, B, I)", o.input_size(),
      x.defined() ? shape_str(x.shape()) : "undefined");
  const bool unbatched = x.dim() == 2;
  // Time-major (T, B, I) inside.
  Tensor seq = unbatched ? x.unsqueeze(1) : (o.batch_first() ? x.transpose(0, 1) : x);
  const int64_t B = seq.size(1);
  auto initial = [&](const Tensor& s, const char* what) {
    if (!s.defined()) return zeros({L * D, B, H}, x.dtype());
    Tensor st = unbatched && s.dim() == 2 ? s.unsqueeze(1) : s;
    KILN_CHECK_SHAPE(st.dim() == 3 && st.size(0) == L * D && st.size(1) == B && st.size(2) == H,
                     "{}: {} must be (L·D, B, H) = [{}, {}, {}], got shape {}", where(), what,
                     L * D, B, H, s.shape());
    return st;
  };
  Tensor h_init = initial(h0, "h0");
  Tensor c_init = lstm ? initial(c0, "c0") : Tensor();

  std::vector<Tensor> h_n, c_n;
  for (int64_t layer = 0; layer < L; ++layer) {
    std::vector<Tensor> outs;
    for (int64_t dir = 0; dir < D; ++dir) {
      int64_t idx = layer * D + dir;
      RNNOutput r = run_direction(seq, layer, dir == 1, h_init.select(0, idx),
                                  lstm ? c_init.select(0, idx) : Tensor());
      outs.push_back(r.output);
      h_n.push_back(r.h_n);
      if (lstm) c_n.push_back(r.c_n);
    }
    seq = D == 1 ? outs[0] : cat(outs, -1);  // (T, B, D·H)
    if (layer + 1 < L && o.dropout() > 0 && is_training())
      seq = dropout(seq, o.dropout(), true, o.generator());
  }
  RNNOutput out;
  out.output = unbatched ? seq.squeeze(1) : (o.batch_first() ? seq.transpose(0, 1) : seq);
  out.h_n = stack(h_n, 0);
  if (lstm) out.c_n = stack(c_n, 0);
  if (unbatched) {
    out.h_n = out.h_n.squeeze(1);
    if (lstm) out.c_n = out.c_n.squeeze(1);
  }
  return out;
}

// ---------------------------------------------------------------- LSTM

Tensor LSTM::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(!inputs.empty() && inputs.size() <= 3,
             "{}: expected inputs {{x[, h0[, c0]]}}, got {} tensors", where(), inputs.size());
  return forward_with_state(inputs[0], inputs.size() > 1 ? inputs[1] : Tensor(),
                            inputs.size() > 2 ? inputs[2] : Tensor())
      .output;
}

RNNOutput LSTM::forward_with_state(const Tensor& x, const Tensor& h0, const Tensor& c0) {
  return run(x, h0, c0, /*lstm=*/true);
}

RNNOutput LSTM::run_direction(const Tensor& x, int64_t layer, bool reverse, Tensor h, Tensor c) {
  const Weights& w = weights(layer, reverse);
  const int64_t T = x.size(0), H = options_.hidden_size();
  // The input projection of every step in one GEMM: (T, B, in) -> (T, B, 4H).
  Tensor xw = linear(x, w.w_ih, w.b_ih);
  std::vector<Tensor> outs(static_cast<size_t>(T));
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    Tensor gates = add(xw.select(0, t), linear(h, w.w_hh, w.b_hh));  // (B, 4H): i, f, g, o
    Tensor i = sigmoid(gates.narrow(1, 0, H));
    Tensor f = sigmoid(gates.narrow(1, H, H));
    Tensor g = tanh(gates.narrow(1, 2 * H, H));
    Tensor o = sigmoid(gates.narrow(1, 3 * H, H));
    c = add(mul(f, c), mul(i, g));
    h = mul(o, tanh(c));
    outs[static_cast<size_t>(t)] = h;
  }
  return {stack(outs, 0), h, c};
}

// ---------------------------------------------------------------- GRU

Tensor GRU::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(!inputs.empty() && inputs.size() <= 2,
             "{}: expected inputs {{x[, h0]}}, got {} tensors", where(), inputs.size());
  return forward_with_state(inputs[0], inputs.size() > 1 ? inputs[1] : Tensor()).output;
}

RNNOutput GRU::forward_with_state(const Tensor& x, const Tensor& h0) {
  return run(x, h0, Tensor(), /*lstm=*/false);
}

RNNOutput GRU::run_direction(const Tensor& x, int64_t layer, bool reverse, Tensor h, Tensor) {
  const Weights& w = weights(layer, reverse);
  const int64_t T = x.size(0), H = options_.hidden_size();
  Tensor xw = linear(x, w.w_ih, w.b_ih);  // (T, B, 3H)
  std::vector<Tensor> outs(static_cast<size_t>(T));
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    Tensor gi = xw.select(0, t);            // (B, 3H): r, z, n input parts (with b_i*)
    Tensor gh = linear(h, w.w_hh, w.b_hh);  // (B, 3H): hidden parts (with b_h*)
    Tensor r = sigmoid(add(gi.narrow(1, 0, H), gh.narrow(1, 0, H)));
    Tensor z = sigmoid(add(gi.narrow(1, H, H), gh.narrow(1, H, H)));
    Tensor n = tanh(add(gi.narrow(1, 2 * H, H), mul(r, gh.narrow(1, 2 * H, H))));
    h = add(n, mul(z, sub(h, n)));  // (1 − z)·n + z·h
    outs[static_cast<size_t>(t)] = h;
  }
  return {stack(outs, 0), h, Tensor()};
}

}  // namespace kiln::nn
