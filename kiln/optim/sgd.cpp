#include "kiln/optim/sgd.h"

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

namespace kiln::optim {
namespace {

GroupOptions defaults_of(const SGDOptions& o) {
  return {{"lr", o.lr()},
          {"momentum", o.momentum()},
          {"dampening", o.dampening()},
          {"weight_decay", o.weight_decay()},
          {"nesterov", o.nesterov() ? 1.0 : 0.0},
          {"maximize", o.maximize() ? 1.0 : 0.0}};
}

template <typename T>
struct SgdArgs {
  T* p;
  const T* g;
  T* buf;  // momentum buffer or nullptr
  T wd, momentum, one_m_dampening, neg_lr, sign;
  bool has_wd, nesterov, first;
};

// One fused pass over [b, e) in PyTorch's operation order, every scalar rounded to T first (as ATen
// does), operands in locals and __restrict pointers so the loop vectorises.
template <typename T>
void sgd_range(const SgdArgs<T> a, int64_t b, int64_t e) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict buf = a.buf;
  const T wd = a.wd, mom = a.momentum, damp = a.one_m_dampening, neg_lr = a.neg_lr, sign = a.sign;
  const bool has_wd = a.has_wd, nesterov = a.nesterov, first = a.first;
  for (int64_t i = b; i < e; ++i) {
    T d = sign * g[i];  // ×(±1) is exact: maximize
    if (has_wd) d = d + wd * p[i];
    if (buf) {
      buf[i] = first ? d : buf[i] * mom + damp * d;
      d = nesterov ? d + mom * buf[i] : buf[i];
    }
    p[i] = p[i] + neg_lr * d;
  }
}

template <typename T>
void sgd_kernel(T* p, const T* g, T* buf, int64_t n, double lr, double momentum, double dampening,
                double wd, bool nesterov, bool maximize, bool first) {
  const SgdArgs<T> a{p,
                     g,
                     buf,
                     static_cast<T>(wd),
                     static_cast<T>(momentum),
                     static_cast<T>(1.0 - dampening),
                     static_cast<T>(-lr),
                     maximize ? T(-1) : T(1),
                     wd != 0,
                     nesterov,
                     first};
  parallel_for(0, n, kGrainSize, [&a](int64_t b, int64_t e) { sgd_range(a, b, e); });
}

}  // namespace

SGD::SGD(NamedParameters params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{{std::move(params), {}}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups), defaults_of(options)) {
  validate_all();
}

void SGD::validate(size_t group, const GroupOptions& o) const {
  Optimizer::validate(group, o);
  KILN_CHECK(o.get("momentum") >= 0, "SGD: group {}: momentum must be >= 0, got {}", group,
             o.get("momentum"));
  KILN_CHECK(o.get("nesterov") == 0 || (o.get("momentum") > 0 && o.get("dampening") == 0),
             "SGD: group {}: nesterov momentum requires momentum > 0 and dampening = 0 (got "
             "momentum={}, dampening={})",
             group, o.get("momentum"), o.get("dampening"));
}

void SGD::update(const GroupOptions& o, Array& p, const Array& grad, ParamState& st) {
  const double momentum = o.get("momentum");
  Array* buf = nullptr;
  bool first = false;
  if (momentum != 0) {
    auto it = st.buffers.find("momentum_buffer");
    first = it == st.buffers.end();
    if (first)
      it = st.buffers.emplace("momentum_buffer", kernels::empty(p.shape(), p.dtype())).first;
    buf = &it->second;
  }
  KILN_DISPATCH_FLOATING(p.dtype(), "SGD", [&] {
    sgd_kernel<scalar_t>(p.data<scalar_t>(), grad.data<scalar_t>(),
                         buf ? buf->data<scalar_t>() : nullptr, p.numel(), o.get("lr"), momentum,
                         o.get("dampening"), o.get("weight_decay"), o.get("nesterov") != 0,
                         o.get("maximize") != 0, first);
  });
}

}  // namespace kiln::optim
