// ONNX recurrent ops for import_model (see import_ops_internal.h): LSTM, GRU and RNN, forward,
// reverse or bidirectional, with sequence_lens, initial states, peepholes, clip and layout 0/1.
// Unrolled over time with Kiln's autograd ops (so they train); the input projection X·Wᵀ + b of
// every step is one GEMM before the loop, each step then adds H·Rᵀ.
// Legend: T = sequence, B = batch, I = input size, H = hidden size, G = gates (4 LSTM, 3 GRU, 1
// RNN).
#include <fmt/ranges.h>

#include "kiln/onnx/import_ops_internal.h"
#include "kiln/tensor/ops.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

struct Activation {
  std::string name;
  double alpha = 0, beta = 0;
};

Tensor activate(const NodeContext& n, const Activation& a, const Tensor& x) {
  if (a.name == "Sigmoid") return sigmoid(x);
  if (a.name == "Tanh") return tanh(x);
  if (a.name == "Relu") return relu(x);
  if (a.name == "LeakyRelu") return leaky_relu(x, a.alpha);
  if (a.name == "HardSigmoid") return clamp(add(mul(x, a.alpha), a.beta), 0.0, 1.0);
  if (a.name == "Affine") return add(mul(x, a.alpha), a.beta);
  if (a.name == "ScaledTanh") return mul(tanh(mul(x, a.beta)), a.alpha);
  if (a.name == "Softsign") return div(x, add(abs(x), 1.0));
  if (a.name == "Softplus") return add(relu(x), log1p(exp(neg(abs(x)))));
  if (a.name == "Elu") return add(relu(x), mul(sub(exp(minimum(x, zeros_like(x))), 1.0), a.alpha));
  KILN_CHECK(false, "{}: activation '{}' is not supported", n.where(), a.name);
  return {};
}

// The node's activations (per direction), with the op's defaults and alpha/beta defaults.
std::vector<Activation> activations(const NodeContext& n, std::vector<std::string> defaults,
                                    int64_t dirs) {
  std::vector<Activation> out;
  auto it = n.attrs.find("activations");
  std::vector<std::string> names =
      it != n.attrs.end() ? it->second.strings : std::vector<std::string>{};
  const auto alphas = n.floats("activation_alpha"), betas = n.floats("activation_beta");
  if (names.empty())
    for (int64_t d = 0; d < dirs; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  KILN_CHECK(names.size() == defaults.size() * static_cast<size_t>(dirs),
             "{}: {} activations given, {} needed", n.where(), names.size(),
             defaults.size() * static_cast<size_t>(dirs));
  for (size_t k = 0; k < names.size(); ++k) {
    Activation a{names[k]};
    const bool hard = a.name == "HardSigmoid";
    a.alpha = k < alphas.size() ? alphas[k] : (hard ? 0.2 : a.name == "LeakyRelu" ? 0.01 : 1.0);
    a.beta = k < betas.size() ? betas[k] : (hard ? 0.5 : a.name == "ScaledTanh" ? 1.0 : 0.0);
    out.push_back(a);
  }
  return out;
}

enum class Cell { Lstm, Gru, Rnn };

template <Cell K>
Outs recurrent_op(const NodeContext& n, const Inputs& in) {
  constexpr int64_t G = K == Cell::Lstm ? 4 : K == Cell::Gru ? 3 : 1;
  Tensor x = required(n, in, 0);
  const Tensor &W = required(n, in, 1), &R = required(n, in, 2);
  auto opt = [&](size_t k) { return k < in.size() ? in[k] : Tensor(); };
  const Tensor bias = opt(3), seq_lens = opt(4), h0_in = opt(5);
  const Tensor c0_in = K == Cell::Lstm ? opt(6) : Tensor(),
               peep = K == Cell::Lstm ? opt(7) : Tensor();
  const bool batch_first = n.i("layout", 0) != 0;
  if (batch_first) x = transpose(x, 0, 1);  // (T, B, I)
  KILN_CHECK_SHAPE(x.dim() == 3, "{}: X must be 3-D, got [{}]", n.where(),
                   fmt::join(x.shape(), ", "));
  const std::string direction = n.s("direction", "forward");
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2);
  const int64_t H = n.has("hidden_size") ? n.i("hidden_size", 0) : R.size(-1);
  KILN_CHECK_SHAPE(W.dim() == 3 && W.size(0) == dirs && W.size(1) == G * H && W.size(2) == I &&
                       R.dim() == 3 && R.size(0) == dirs && R.size(1) == G * H && R.size(2) == H,
                   "{}: W [{}] / R [{}] do not fit {} direction(s), hidden {} and input {}",
                   n.where(), fmt::join(W.shape(), ", "), fmt::join(R.shape(), ", "), dirs, H, I);
  const double clip = n.f("clip", 0.0);
  const bool couple = n.i("input_forget", 0) != 0;
  const bool lbr = n.i("linear_before_reset", 0) != 0;
  const auto acts =
      activations(n,
                  K == Cell::Lstm  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                  : K == Cell::Gru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                   : std::vector<std::string>{"Tanh"},
                  dirs);
  const size_t per = acts.size() / static_cast<size_t>(dirs);
  auto cl = [&](const Tensor& t) { return clip > 0 ? clamp(t, -clip, clip) : t; };
  // Masks for sequence_lens: step t of batch b counts when t < len[b].
  std::vector<Tensor> masks;
  if (seq_lens.defined()) {
    const std::vector<int64_t> lens = seq_lens.to_vector<int64_t>();
    KILN_CHECK_SHAPE(static_cast<int64_t>(lens.size()) == B, "{}: {} sequence_lens for batch {}",
                     n.where(), lens.size(), B);
    for (int64_t t = 0; t < T; ++t) {
      Array m(Shape{B, 1}, x.dtype());
      for (int64_t b = 0; b < B; ++b) {
        const double on = t < lens[static_cast<size_t>(b)] ? 1.0 : 0.0;
        if (x.dtype() == kFloat64)
          m.data<double>()[b] = on;
        else
          m.data<float>()[b] = static_cast<float>(on);
      }
      masks.emplace_back(m);
    }
  }
  std::vector<Tensor> ys(static_cast<size_t>(dirs)), hs, cs;
  for (int64_t d = 0; d < dirs; ++d) {
    const Activation* a = &acts[static_cast<size_t>(d) * per];
    const Tensor w = select(W, 0, d), r = select(R, 0, d);  // (G·H, I), (G·H, H)
    Tensor wb, rb;
    if (bias.defined()) {
      const Tensor bd = select(bias, 0, d);  // (2·G·H)
      wb = narrow(bd, 0, 0, G * H);
      rb = narrow(bd, 0, G * H, G * H);
    }
    // X·Wᵀ + Wb for every step at once: (T·B, G·H).
    const Tensor xw = reshape(linear(reshape(x, {T * B, I}), w, wb), {T, B, G * H});
    Tensor h = h0_in.defined() ? select(h0_in, 0, d) : zeros({B, H}, x.dtype());
    if (h0_in.defined() && batch_first) h = select(h0_in, 1, d);
    Tensor c;
    if constexpr (K == Cell::Lstm) {
      c = c0_in.defined() ? (batch_first ? select(c0_in, 1, d) : select(c0_in, 0, d))
                          : zeros({B, H}, x.dtype());
    }
    std::vector<Tensor> steps(static_cast<size_t>(T));
    const bool reverse = direction == "reverse" || d == 1;
    for (int64_t k = 0; k < T; ++k) {
      const int64_t t = reverse ? T - 1 - k : k;
      const Tensor xt = select(xw, 0, t);  // (B, G·H)
      Tensor h_new, c_new;
      if constexpr (K == Cell::Lstm) {
        Tensor gates = add(xt, linear(h, r, rb));  // i o f c
        Tensor gi = narrow(gates, 1, 0, H), go = narrow(gates, 1, H, H),
               gf = narrow(gates, 1, 2 * H, H), gc = narrow(gates, 1, 3 * H, H);
        if (peep.defined()) {
          const Tensor p = select(peep, 0, d);
          gi = add(gi, mul(narrow(p, 0, 0, H), c));
          gf = add(gf, mul(narrow(p, 0, 2 * H, H), c));
        }
        const Tensor i_t = activate(n, a[0], cl(gi));
        const Tensor f_t = couple ? rsub(i_t, 1.0) : activate(n, a[0], cl(gf));
        const Tensor c_t = activate(n, a[1], cl(gc));
        c_new = add(mul(f_t, c), mul(i_t, c_t));
        if (peep.defined()) go = add(go, mul(narrow(select(peep, 0, d), 0, H, H), c_new));
        const Tensor o_t = activate(n, a[0], cl(go));
        h_new = mul(o_t, activate(n, a[2], c_new));
      } else if constexpr (K == Cell::Gru) {
        const Tensor rh = narrow(r, 0, 2 * H, H);
        const Tensor rzr = narrow(r, 0, 0, 2 * H);
        const Tensor rbzr = rb.defined() ? narrow(rb, 0, 0, 2 * H) : Tensor();
        const Tensor rbh = rb.defined() ? narrow(rb, 0, 2 * H, H) : Tensor();
        const Tensor zr = add(narrow(xt, 1, 0, 2 * H), linear(h, rzr, rbzr));
        const Tensor z = activate(n, a[0], cl(narrow(zr, 1, 0, H)));
        const Tensor rr = activate(n, a[0], cl(narrow(zr, 1, H, H)));
        const Tensor hx = narrow(xt, 1, 2 * H, H);
        const Tensor hh =
            lbr ? add(hx, mul(rr, linear(h, rh, rbh))) : add(hx, linear(mul(rr, h), rh, rbh));
        const Tensor ht = activate(n, a[1], cl(hh));
        h_new = add(mul(rsub(z, 1.0), ht), mul(z, h));
      } else {
        h_new = activate(n, a[0], cl(add(xt, linear(h, r, rb))));
      }
      if (!masks.empty()) {
        const Tensor& m = masks[static_cast<size_t>(t)];
        const Tensor keep = rsub(m, 1.0);
        steps[static_cast<size_t>(t)] = mul(h_new, m);
        h = add(mul(h_new, m), mul(h, keep));
        if constexpr (K == Cell::Lstm) c = add(mul(c_new, m), mul(c, keep));
      } else {
        steps[static_cast<size_t>(t)] = h_new;
        h = h_new;
        if constexpr (K == Cell::Lstm) c = c_new;
      }
    }
    ys[static_cast<size_t>(d)] =
        T == 0 ? zeros({0, B, H}, x.dtype()) : stack(steps, 0);  // (T, B, H)
    hs.push_back(h);
    cs.push_back(c);
  }
  Tensor y = stack(ys, 1);    // (T, dirs, B, H)
  Tensor y_h = stack(hs, 0);  // (dirs, B, H)
  Tensor y_c = K == Cell::Lstm ? stack(cs, 0) : Tensor();
  if (batch_first) {
    y = permute(y, {2, 0, 1, 3});  // (B, T, dirs, H)
    y_h = transpose(y_h, 0, 1);
    if (y_c.defined()) y_c = transpose(y_c, 0, 1);
  }
  if constexpr (K == Cell::Lstm) return {y, y_h, y_c};
  return {y, y_h};
}

}  // namespace

void register_rnn_ops(OpTable& t) {
  t["LSTM"] = recurrent_op<Cell::Lstm>;
  t["GRU"] = recurrent_op<Cell::Gru>;
  t["RNN"] = recurrent_op<Cell::Rnn>;
}

}  // namespace kiln::onnx::detail
