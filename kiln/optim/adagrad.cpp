#include "kiln/optim/adagrad.h"

#include <cmath>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

namespace kiln::optim {
namespace {

GroupOptions defaults_of(const AdagradOptions& o) {
  return {{"lr", o.lr()},
          {"lr_decay", o.lr_decay()},
          {"weight_decay", o.weight_decay()},
          {"initial_accumulator_value", o.initial_accumulator_value()},
          {"eps", o.eps()},
          {"maximize", o.maximize() ? 1.0 : 0.0}};
}

template <typename T>
struct AdagradArgs {
  T* p;
  const T* g;
  T* sum;
  T eps, wd, neg_clr, sign;
  bool has_wd;
};

// One fused pass over [b, e) in PyTorch's operation order, scalars rounded to T first, operands in
// locals so the loop vectorises.
template <typename T>
void adagrad_range(const AdagradArgs<T> a, int64_t b, int64_t e) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict sum = a.sum;
  const T eps = a.eps, wd = a.wd, neg_clr = a.neg_clr, sign = a.sign;
  const bool has_wd = a.has_wd;
  for (int64_t i = b; i < e; ++i) {
    T gi = sign * g[i];  // ×(±1) is exact: maximize
    if (has_wd) gi = gi + wd * p[i];
    sum[i] = sum[i] + T(1) * gi * gi;
    const T std_i = std::sqrt(sum[i]) + eps;
    p[i] = p[i] + neg_clr * gi / std_i;
  }
}

template <typename T>
void adagrad_kernel(T* p, const T* g, T* sum, int64_t n, double clr, double eps, double wd,
                    bool maximize) {
  const AdagradArgs<T> a{p,
                         g,
                         sum,
                         static_cast<T>(eps),
                         static_cast<T>(wd),
                         static_cast<T>(-clr),
                         maximize ? T(-1) : T(1),
                         wd != 0};
  parallel_for(0, n, kGrainSize, [&a](int64_t b, int64_t e) { adagrad_range(a, b, e); });
}

}  // namespace

Adagrad::Adagrad(NamedParameters params, AdagradOptions options)
    : Adagrad(std::vector<ParamGroup>{{std::move(params), {}}}, options) {}
Adagrad::Adagrad(std::vector<ParamGroup> groups, AdagradOptions options)
    : Optimizer("Adagrad", std::move(groups), defaults_of(options)) {
  validate_all();
}

void Adagrad::validate(size_t group, const GroupOptions& o) const {
  Optimizer::validate(group, o);
  KILN_CHECK(o.get("lr_decay") >= 0, "Adagrad: group {}: lr_decay must be >= 0, got {}", group,
             o.get("lr_decay"));
  KILN_CHECK(o.get("initial_accumulator_value") >= 0,
             "Adagrad: group {}: initial_accumulator_value must be >= 0, got {}", group,
             o.get("initial_accumulator_value"));
  KILN_CHECK(o.get("eps") >= 0, "Adagrad: group {}: eps must be >= 0, got {}", group, o.get("eps"));
}

void Adagrad::update(const GroupOptions& o, Array& p, const Array& grad, ParamState& st) {
  auto it = st.buffers.find("sum");
  if (it == st.buffers.end())
    it =
        st.buffers
            .emplace("sum", kernels::full(p.shape(), o.get("initial_accumulator_value"), p.dtype()))
            .first;
  const double clr = o.get("lr") / (1.0 + static_cast<double>(st.step - 1) * o.get("lr_decay"));
  KILN_DISPATCH_FLOATING(p.dtype(), "Adagrad", [&] {
    adagrad_kernel<scalar_t>(p.data<scalar_t>(), grad.data<scalar_t>(), it->second.data<scalar_t>(),
                             p.numel(), clr, o.get("eps"), o.get("weight_decay"),
                             o.get("maximize") != 0);
  });
}

}  // namespace kiln::optim
