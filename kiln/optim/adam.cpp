#include "kiln/optim/adam.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

namespace kiln::optim {
namespace {

GroupOptions defaults_of(const AdamOptions& o) {
  return {{"lr", o.lr()},
          {"beta1", o.beta1()},
          {"beta2", o.beta2()},
          {"eps", o.eps()},
          {"weight_decay", o.weight_decay()},
          {"amsgrad", o.amsgrad() ? 1.0 : 0.0},
          {"maximize", o.maximize() ? 1.0 : 0.0}};
}

struct AdamScalars {
  double lr, beta1, beta2, eps, wd;
  double step_size;              // lr / (1 − β1^t)
  double bias_correction2_sqrt;  // √(1 − β2^t)
  bool amsgrad, maximize, decoupled;
};

// The loop's operands, every scalar already rounded to T (as ATen rounds a Python scalar to the
// tensor's dtype).
template <typename T>
struct AdamArgs {
  T* p;
  const T* g;
  T *m, *v, *vmax;
  T b1, one_m_b1, b2, one_m_b2, wd, decay, bc2_sqrt, eps, neg_step, sign;
  bool decoupled, coupled_wd;
};

// One fused pass over [b, e) in PyTorch's operation order (see the header). Operands are copied
// into locals and __restrict pointers first so the loop vectorises (sqrt and div are correctly
// rounded in SIMD too: results do not depend on the vector width or the chunking).
template <typename T>
void adam_range(const AdamArgs<T> a, int64_t b, int64_t e) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict m = a.m;
  T* __restrict v = a.v;
  T* __restrict vmax = a.vmax;
  const T b1 = a.b1, one_m_b1 = a.one_m_b1, b2 = a.b2, one_m_b2 = a.one_m_b2, wd = a.wd,
          decay = a.decay;
  const T bc2_sqrt = a.bc2_sqrt, eps = a.eps, neg_step = a.neg_step, sign = a.sign;
  const bool decoupled = a.decoupled, coupled_wd = a.coupled_wd;
  for (int64_t i = b; i < e; ++i) {
    T gi = sign * g[i];  // ×(±1) is exact: maximize
    if (decoupled) p[i] = p[i] * decay;
    if (coupled_wd) gi = gi + wd * p[i];
    m[i] = m[i] * b1 + one_m_b1 * gi;
    v[i] = v[i] * b2 + one_m_b2 * gi * gi;  // addcmul: v + (value·g)·g
    T second = v[i];
    if (vmax) {
      vmax[i] = vmax[i] < v[i] ? v[i] : vmax[i];
      second = vmax[i];
    }
    const T denom = std::sqrt(second) / bc2_sqrt + eps;
    p[i] = p[i] + neg_step * m[i] / denom;  // addcdiv: p + (value·m)/denom
  }
}

template <typename T>
AdamArgs<T> adam_args(T* p, const T* g, T* m, T* v, T* vmax, const AdamScalars& s) {
  return {p,
          g,
          m,
          v,
          vmax,
          static_cast<T>(s.beta1),
          static_cast<T>(1.0 - s.beta1),
          static_cast<T>(s.beta2),
          static_cast<T>(1.0 - s.beta2),
          static_cast<T>(s.wd),
          static_cast<T>(1.0 - s.lr * s.wd),
          static_cast<T>(s.bias_correction2_sqrt),
          static_cast<T>(s.eps),
          static_cast<T>(-s.step_size),
          s.maximize ? T(-1) : T(1),
          s.decoupled,
          !s.decoupled && s.wd != 0};
}

// One parameter's slice of the fused pass: elements [begin, begin + n) of the step's concatenation.
struct Segment {
  int64_t begin = 0, n = 0;
  bool f64 = false;
  AdamArgs<float> f{};
  AdamArgs<double> d{};
  void set(const AdamArgs<float>& a) { f = a; }
  void set(const AdamArgs<double>& a) {
    f64 = true;
    d = a;
  }
};

// Every segment in one parallel loop over the concatenated elements: each chunk [b, e) runs
// adam_range on the parts of the segments it covers (segments sorted by begin).
void adam_fused(const std::vector<Segment>& segs, int64_t total) {
  parallel_for(0, total, kGrainSize, [&segs](int64_t b, int64_t e) {
    auto it = std::upper_bound(segs.begin(), segs.end(), b,
                               [](int64_t x, const Segment& s) { return x < s.begin; });
    for (--it; it != segs.end() && it->begin < e; ++it) {
      const int64_t lo = std::max(b, it->begin) - it->begin;
      const int64_t hi = std::min(e, it->begin + it->n) - it->begin;
      if (it->f64)
        adam_range(it->d, lo, hi);
      else
        adam_range(it->f, lo, hi);
    }
  });
}

Array& buffer(ParamState& st, const char* key, const Array& p) {
  auto it = st.buffers.find(key);
  if (it == st.buffers.end())
    it = st.buffers.emplace(key, kernels::zeros(p.shape(), p.dtype())).first;
  return it->second;
}

}  // namespace

Adam::Adam(NamedParameters params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{{std::move(params), {}}}, options) {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam("Adam", std::move(groups), options, false) {}
Adam::Adam(std::string name, std::vector<ParamGroup> groups, const AdamOptions& options,
           bool decoupled)
    : Optimizer(std::move(name), std::move(groups), defaults_of(options)),
      decoupled_(decoupled),
      fused_(options.fused()) {
  validate_all();
}

AdamW::AdamW(NamedParameters params, AdamOptions options)
    : AdamW(std::vector<ParamGroup>{{std::move(params), {}}}, options) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam("AdamW", std::move(groups), options, true) {}

void Adam::validate(size_t group, const GroupOptions& o) const {
  Optimizer::validate(group, o);
  for (const char* b : {"beta1", "beta2"})
    KILN_CHECK(o.get(b) >= 0 && o.get(b) < 1, "{}: group {}: {} must be in [0, 1), got {}", name(),
               group, b, o.get(b));
  KILN_CHECK(o.get("eps") >= 0, "{}: group {}: eps must be >= 0, got {}", name(), group,
             o.get("eps"));
}

namespace {
AdamScalars scalars_of(const GroupOptions& o, const ParamState& st, bool decoupled) {
  AdamScalars s{};
  s.lr = o.get("lr");
  s.beta1 = o.get("beta1");
  s.beta2 = o.get("beta2");
  s.eps = o.get("eps");
  s.wd = o.get("weight_decay");
  s.amsgrad = o.get("amsgrad") != 0;
  s.maximize = o.get("maximize") != 0;
  s.decoupled = decoupled;
  const double t = static_cast<double>(st.step);
  s.step_size = s.lr / (1.0 - std::pow(s.beta1, t));
  s.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(s.beta2, t));
  return s;
}

// One parameter's update as a segment starting at `begin` of a step's concatenation; creates its
// state buffers on first use ("exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with amsgrad).
Segment segment_of(const GroupOptions& o, Array& p, const Array& grad, ParamState& st,
                   bool decoupled, const std::string& op, int64_t begin) {
  const AdamScalars s = scalars_of(o, st, decoupled);
  Array& m = buffer(st, "exp_avg", p);
  Array& v = buffer(st, "exp_avg_sq", p);
  Array* vmax = s.amsgrad ? &buffer(st, "max_exp_avg_sq", p) : nullptr;
  Segment seg;
  seg.begin = begin;
  seg.n = p.numel();
  KILN_DISPATCH_FLOATING(p.dtype(), op, [&] {
    seg.set(adam_args<scalar_t>(p.data<scalar_t>(), grad.data<scalar_t>(), m.data<scalar_t>(),
                                v.data<scalar_t>(), vmax ? vmax->data<scalar_t>() : nullptr, s));
  });
  return seg;
}
}  // namespace

// The per-parameter loop (fused(false)), the fused pass's reference twin: its own parallel loop
// over this parameter alone.
void Adam::update(const GroupOptions& o, Array& p, const Array& grad, ParamState& st) {
  const Segment seg = segment_of(o, p, grad, st, decoupled_, name(), 0);
  parallel_for(0, seg.n, kGrainSize, [&seg](int64_t b, int64_t e) {
    if (seg.f64)
      adam_range(seg.d, b, e);
    else
      adam_range(seg.f, b, e);
  });
}

void Adam::update_all(std::vector<Update>& updates) {
  if (!fused_) return Optimizer::update_all(updates);
  std::vector<Segment> segs;
  segs.reserve(updates.size());
  int64_t total = 0;
  for (Update& u : updates) {
    const Segment seg = segment_of(*u.options, u.p, u.grad, *u.st, decoupled_, name(), total);
    if (seg.n == 0) continue;  // its state exists, as after update()
    segs.push_back(seg);
    total += seg.n;
  }
  if (!segs.empty()) adam_fused(segs, total);
}

}  // namespace kiln::optim
