#include "kiln/optim/rmsprop.h"

#include <cmath>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

namespace kiln::optim {
namespace {

GroupOptions defaults_of(const RMSpropOptions& o) {
  return {{"lr", o.lr()},
          {"alpha", o.alpha()},
          {"eps", o.eps()},
          {"weight_decay", o.weight_decay()},
          {"momentum", o.momentum()},
          {"centered", o.centered() ? 1.0 : 0.0},
          {"maximize", o.maximize() ? 1.0 : 0.0}};
}

template <typename T>
struct RmspropArgs {
  T* p;
  const T* g;
  T *sq, *gavg, *buf;  // grad_avg (centered) and momentum buffer may be nullptr
  T alpha, one_m_alpha, eps, wd, momentum, neg_lr, sign;
  bool has_wd;
};

// One fused pass over [b, e) in PyTorch's operation order (addcmul: s + (value·t1)·t2; addcdiv:
// s + (value·t1)/t2), scalars rounded to T first, operands in locals so the loop vectorises.
template <typename T>
void rmsprop_range(const RmspropArgs<T> a, int64_t b, int64_t e) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict sq = a.sq;
  T* __restrict gavg = a.gavg;
  T* __restrict buf = a.buf;
  const T al = a.alpha, one_m_a = a.one_m_alpha, eps = a.eps, wd = a.wd, mom = a.momentum,
          neg_lr = a.neg_lr;
  const T sign = a.sign;
  const bool has_wd = a.has_wd;
  for (int64_t i = b; i < e; ++i) {
    T gi = sign * g[i];  // ×(±1) is exact: maximize
    if (has_wd) gi = gi + wd * p[i];
    sq[i] = sq[i] * al + one_m_a * gi * gi;
    T avg;
    if (gavg) {
      gavg[i] = gavg[i] * al + one_m_a * gi;
      avg = std::sqrt(sq[i] + T(-1) * gavg[i] * gavg[i]);
    } else {
      avg = std::sqrt(sq[i]);
    }
    avg = avg + eps;
    if (buf) {
      buf[i] = buf[i] * mom + T(1) * gi / avg;
      p[i] = p[i] + neg_lr * buf[i];
    } else {
      p[i] = p[i] + neg_lr * gi / avg;
    }
  }
}

template <typename T>
void rmsprop_kernel(T* p, const T* g, T* sq, T* gavg, T* buf, int64_t n, double lr, double alpha,
                    double eps, double wd, double momentum, bool maximize) {
  const RmspropArgs<T> a{p,
                         g,
                         sq,
                         gavg,
                         buf,
                         static_cast<T>(alpha),
                         static_cast<T>(1.0 - alpha),
                         static_cast<T>(eps),
                         static_cast<T>(wd),
                         static_cast<T>(momentum),
                         static_cast<T>(-lr),
                         maximize ? T(-1) : T(1),
                         wd != 0};
  parallel_for(0, n, kGrainSize, [&a](int64_t b, int64_t e) { rmsprop_range(a, b, e); });
}

Array& buffer(ParamState& st, const char* key, const Array& p) {
  auto it = st.buffers.find(key);
  if (it == st.buffers.end())
    it = st.buffers.emplace(key, kernels::zeros(p.shape(), p.dtype())).first;
  return it->second;
}

}  // namespace

RMSprop::RMSprop(NamedParameters params, RMSpropOptions options)
    : RMSprop(std::vector<ParamGroup>{{std::move(params), {}}}, options) {}
RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions options)
    : Optimizer("RMSprop", std::move(groups), defaults_of(options)) {
  validate_all();
}

void RMSprop::validate(size_t group, const GroupOptions& o) const {
  Optimizer::validate(group, o);
  KILN_CHECK(o.get("alpha") >= 0, "RMSprop: group {}: alpha must be >= 0, got {}", group,
             o.get("alpha"));
  KILN_CHECK(o.get("eps") >= 0, "RMSprop: group {}: eps must be >= 0, got {}", group, o.get("eps"));
  KILN_CHECK(o.get("momentum") >= 0, "RMSprop: group {}: momentum must be >= 0, got {}", group,
             o.get("momentum"));
}

void RMSprop::update(const GroupOptions& o, Array& p, const Array& grad, ParamState& st) {
  const double momentum = o.get("momentum");
  Array& sq = buffer(st, "square_avg", p);
  Array* buf = momentum > 0 ? &buffer(st, "momentum_buffer", p) : nullptr;
  Array* gavg = o.get("centered") != 0 ? &buffer(st, "grad_avg", p) : nullptr;
  KILN_DISPATCH_FLOATING(p.dtype(), "RMSprop", [&] {
    rmsprop_kernel<scalar_t>(p.data<scalar_t>(), grad.data<scalar_t>(), sq.data<scalar_t>(),
                             gavg ? gavg->data<scalar_t>() : nullptr,
                             buf ? buf->data<scalar_t>() : nullptr, p.numel(), o.get("lr"),
                             o.get("alpha"), o.get("eps"), o.get("weight_decay"), momentum,
                             o.get("maximize") != 0);
  });
}

}  // namespace kiln::optim
