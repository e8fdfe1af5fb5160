#include "kiln/autograd/gradcheck.h"

#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult res;
  // Fresh leaves each evaluation, so accumulated grads never leak between rows.
  auto fresh = [&]() {
    std::vector<Tensor> xs;
    for (const Tensor& t : inputs) {
      Tensor c(t.data().clone());
      if (t.requires_grad()) c.requires_grad_(true);
      xs.push_back(c);
    }
    return xs;
  };
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = fn(fresh());
  }
  KILN_CHECK(is_floating(y0.dtype()), "gradcheck: fn must return a floating tensor, got {}",
             y0.dtype());
  const int64_t m = y0.numel();
  // Analytical Jacobian rows: J[j] = d y_j / d inputs (one backward per output element).
  std::vector<std::vector<Array>> jac(m);
  for (int64_t j = 0; j < m; ++j) {
    std::vector<Tensor> xs = fresh();
    Tensor y = fn(xs);
    Array g = kernels::zeros(y.shape(), y.dtype());
    KILN_DISPATCH_FLOATING(g.dtype(), "gradcheck", [&] { g.data<scalar_t>()[j] = scalar_t(1); });
    if (y.requires_grad()) y.backward(Tensor(g));
    for (size_t i = 0; i < xs.size(); ++i)
      jac[j].push_back(xs[i].requires_grad() && xs[i].grad().defined()
                           ? xs[i].grad().data().to(kFloat64).contiguous()
                           : Array{});
  }
  // Numerical columns by central differences, compared entry by entry.
  NoGradGuard ng;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    const int64_t n = inputs[i].numel();
    for (int64_t k = 0; k < n; ++k) {
      auto eval = [&](double delta) {
        std::vector<Tensor> xs = fresh();
        Array a = xs[i].data();
        KILN_DISPATCH_FLOATING(a.dtype(), "gradcheck",
                               [&] { a.data<scalar_t>()[k] += static_cast<scalar_t>(delta); });
        return fn(xs).data().to(kFloat64).contiguous();
      };
      Array yp = eval(opt.eps), ym = eval(-opt.eps);
      const double* pp = yp.data<double>();
      const double* pm = ym.data<double>();
      for (int64_t j = 0; j < m; ++j) {
        double num = (pp[j] - pm[j]) / (2 * opt.eps);
        double ana = jac[j][i].defined() ? jac[j][i].data<double>()[k] : 0.0;
        double err = std::abs(ana - num);
        res.max_abs_error = std::max(res.max_abs_error, err);
        ++res.checked;
        if (res.ok && (!(err <= opt.atol + opt.rtol * std::abs(num)))) {
          res.ok = false;
          res.message = fmt::format(
              "input {} element {}, output element {}: analytical {:.8g} vs numerical {:.8g}", i, k,
              j, ana, num);
        }
      }
    }
  }
  return res;
}

}  // namespace kiln
