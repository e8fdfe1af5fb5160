// Gradcheck cases for the elementwise, reduction, shape and linalg families.
#include "autograd/gradcheck_registry.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/ops.h"

namespace kiln::testing {
namespace {

using In = std::vector<Tensor>;
// Inputs kept off kinks: |x| >= 0.2 for relu/abs/sign-like ops, positive for log/sqrt/pow.
Tensor away_from_zero(const Shape& s, uint64_t seed) {
  Tensor x = leaf(s, seed, 0.2, 1.0);
  Generator g(seed + 99);
  Array sign = kernels::bernoulli(s, 0.5, kFloat64, &g);
  Tensor signed_x(kernels::mul(x.data(), kernels::add(kernels::mul(sign, 2.0), -1.0)), true);
  return signed_x;
}
Tensor positive(const Shape& s, uint64_t seed) {
  return leaf(s, seed, 0.5, 2.0);
}

#define UNARY(name, fn, mk)                                                               \
  {                                                                                       \
    name, "unary", [] { return In{mk({3, 4}, 1)}; }, [](const In& v) { return fn(v[0]); } \
  }

RegisterGradcheck reg({
    {"add", "broadcast (3,4)+(4)",
     [] {
       return In{leaf({3, 4}, 1), leaf({4}, 2)};
     },
     [](const In& v) { return add(v[0], v[1]); }},
    {"sub", "broadcast (2,1,3)-(4,1)",
     [] {
       return In{leaf({2, 1, 3}, 3), leaf({4, 1}, 4)};
     },
     [](const In& v) { return sub(v[0], v[1]); }},
    {"mul", "broadcast (3,4)*(3,1)",
     [] {
       return In{leaf({3, 4}, 5), leaf({3, 1}, 6)};
     },
     [](const In& v) { return mul(v[0], v[1]); }},
    {"div", "broadcast",
     [] {
       return In{leaf({3, 4}, 7), positive({4}, 8)};
     },
     [](const In& v) { return div(v[0], v[1]); }},
    {"pow", "tensor^tensor",
     [] {
       return In{positive({3, 2}, 9), leaf({3, 2}, 10)};
     },
     [](const In& v) { return pow(v[0], v[1]); }},
    {"add_scalar", "x+2.5", [] { return In{leaf({5}, 11)}; },
     [](const In& v) { return add(v[0], 2.5); }},
    {"mul_scalar", "x*-3", [] { return In{leaf({5}, 12)}; },
     [](const In& v) { return mul(v[0], -3.0); }},
    {"pow_scalar", "x^2.5", [] { return In{positive({5}, 13)}; },
     [](const In& v) { return pow(v[0], 2.5); }},
    {"rsub_scalar", "2-x", [] { return In{leaf({5}, 14)}; },
     [](const In& v) { return 2.0 - v[0]; }},
    {"rdiv_scalar", "2/x", [] { return In{positive({5}, 15)}; },
     [](const In& v) { return 2.0 / v[0]; }},
    {"maximum", "no ties",
     [] {
       return In{leaf({4, 3}, 16), leaf({3}, 17)};
     },
     [](const In& v) { return maximum(v[0], v[1]); }},
    {"minimum", "no ties",
     [] {
       return In{leaf({4, 3}, 18), leaf({4, 3}, 19)};
     },
     [](const In& v) { return minimum(v[0], v[1]); }},
    UNARY("neg", neg, leaf),
    UNARY("abs", abs, away_from_zero),
    UNARY("exp", exp, leaf),
    UNARY("log", log, positive),
    UNARY("log1p", log1p, positive),
    UNARY("sqrt", sqrt, positive),
    UNARY("rsqrt", rsqrt, positive),
    UNARY("square", square, leaf),
    UNARY("reciprocal", reciprocal, positive),
    UNARY("sin", sin, leaf),
    UNARY("cos", cos, leaf),
    UNARY("erf", erf, leaf),
    UNARY("tanh", tanh, leaf),
    UNARY("sigmoid", sigmoid, leaf),
    UNARY("relu", relu, away_from_zero),
    UNARY("silu", silu, leaf),
    {"leaky_relu", "slope 0.1",
     [] {
       return In{away_from_zero({3, 4}, 20)};
     },
     [](const In& v) { return leaky_relu(v[0], 0.1); }},
    {"gelu", "erf form",
     [] {
       return In{leaf({3, 4}, 21, -3, 3)};
     },
     [](const In& v) { return gelu(v[0]); }},
    {"gelu", "tanh form",
     [] {
       return In{leaf({3, 4}, 22, -3, 3)};
     },
     [](const In& v) { return gelu(v[0], "tanh"); }},
    {"clamp", "inside and outside", [] { return In{leaf({12}, 23, -2, 2)}; },
     [](const In& v) { return clamp(v[0], -0.93, 0.87); }},
    {"where", "both branches",
     [] {
       return In{leaf({3, 4}, 24), leaf({4}, 25)};
     },
     [](const In& v) { return where(gt(v[0], 0.0), v[0], v[1]); }},
    {"masked_fill", "mask",
     [] {
       return In{leaf({3, 4}, 26)};
     },
     [](const In& v) { return masked_fill(v[0], lt(v[0].detach(), 0.0), 0.5); }},
    // reductions
    {"sum", "all",
     [] {
       return In{leaf({3, 4}, 30)};
     },
     [](const In& v) { return sum(v[0]); }},
    {"sum", "dims {0,2} keepdim",
     [] {
       return In{leaf({2, 3, 4}, 31)};
     },
     [](const In& v) {
       return sum(v[0], {0, 2}, true);
     }},
    {"mean", "dim -1",
     [] {
       return In{leaf({3, 4}, 32)};
     },
     [](const In& v) { return mean(v[0], {-1}); }},
    {"var", "unbiased dim 1",
     [] {
       return In{leaf({3, 5}, 33)};
     },
     [](const In& v) { return var(v[0], {1}); }},
    {"var", "biased all (std composite)",
     [] {
       return In{leaf({3, 5}, 34)};
     },
     [](const In& v) { return std(v[0], {}, 0); }},
    {"logsumexp", "dim 1",
     [] {
       return In{leaf({3, 5}, 35, -3, 3)};
     },
     [](const In& v) { return logsumexp(v[0], {1}); }},
    {"norm", "p=2",
     [] {
       return In{leaf({3, 4}, 36)};
     },
     [](const In& v) { return norm(v[0], 2.0, {1}); }},
    {"norm", "p=3",
     [] {
       return In{away_from_zero({3, 4}, 37)};
     },
     [](const In& v) { return norm(v[0], 3.0); }},
    // p = 1 is |x| summed: inputs kept off 0, where the subgradient is a choice.
    {"norm", "p=1 over dim 1",
     [] {
       return In{away_from_zero({3, 4}, 39)};
     },
     [](const In& v) { return norm(v[0], 1.0, {1}); }},
    {"norm", "p=1 full, keepdim",
     [] {
       return In{away_from_zero({2, 3}, 40)};
     },
     [](const In& v) {
       return norm(v[0], 1.0, {0, 1}, true);
     }},
    {"amax", "dim 0",
     [] {
       return In{leaf({4, 3}, 38)};
     },
     [](const In& v) { return amax(v[0], {0}); }},
    {"amin", "all",
     [] {
       return In{leaf({4, 3}, 39)};
     },
     [](const In& v) { return amin(v[0]); }},
    {"max", "values along dim 1",
     [] {
       return In{leaf({4, 3}, 40)};
     },
     [](const In& v) { return max(v[0], 1).values; }},
    {"min", "values along dim 0 keepdim",
     [] {
       return In{leaf({4, 3}, 41)};
     },
     [](const In& v) { return min(v[0], 0, true).values; }},
    // shape
    {"reshape", "reshape/view/flatten/squeeze",
     [] {
       return In{leaf({2, 3, 1}, 50)};
     },
     [](const In& v) {
       return v[0].reshape({3, 2}).flatten().unsqueeze(0).squeeze(0);
     }},
    {"transpose", "transpose + permute",
     [] {
       return In{leaf({2, 3, 4}, 51)};
     },
     [](const In& v) {
       return v[0].transpose(0, 2).permute({1, 0, 2}).contiguous();
     }},
    {"slice", "step 2 + narrow",
     [] {
       return In{leaf({5, 4}, 52)};
     },
     [](const In& v) { return v[0].slice(0, 1, 5, 2).narrow(1, 1, 2); }},
    {"select", "negative index",
     [] {
       return In{leaf({3, 4}, 53)};
     },
     [](const In& v) { return v[0].select(1, -1); }},
    {"expand", "(3,1)->(2,3,4)",
     [] {
       return In{leaf({3, 1}, 54)};
     },
     [](const In& v) {
       return v[0].expand({2, 3, 4});
     }},
    {"identity", "clone/contiguous",
     [] {
       return In{leaf({3, 4}, 55)};
     },
     [](const In& v) { return v[0].t().contiguous().clone(); }},
    {"cast", "float64->float32->float64 (loose: float32 round trip)",
     [] { return In{leaf({3}, 56)}; }, [](const In& v) { return v[0].to(kFloat32).to(kFloat64); },
     GradcheckOptions{1e-3, 1e-4, 1e-3}},
    // linalg
    {"matmul", "2-D",
     [] {
       return In{leaf({3, 4}, 60), leaf({4, 2}, 61)};
     },
     [](const In& v) { return matmul(v[0], v[1]); }},
    {"matmul", "batched broadcast (2,1,3,4)x(3,4,2)",
     [] {
       return In{leaf({2, 1, 3, 4}, 62), leaf({3, 4, 2}, 63)};
     },
     [](const In& v) { return matmul(v[0], v[1]); }},
    {"matmul", "vector x matrix, matrix x vector",
     [] {
       return In{leaf({4}, 64), leaf({4, 3}, 65), leaf({3}, 66)};
     },
     [](const In& v) { return matmul(matmul(v[0], v[1]), v[2]); }},
    {"matmul", "transposed view operands",
     [] {
       return In{leaf({4, 3}, 67), leaf({2, 4}, 68)};
     },
     [](const In& v) { return matmul(v[0].t(), v[1].t()); }},
    {"linear", "with bias, 3-D input",
     [] {
       return In{leaf({2, 3, 4}, 69), leaf({5, 4}, 70), leaf({5}, 71)};
     },
     [](const In& v) { return linear(v[0], v[1], v[2]); }},
    {"linear", "no bias",
     [] {
       return In{leaf({3, 4}, 72), leaf({2, 4}, 73)};
     },
     [](const In& v) { return linear(v[0], v[1]); }},
});

}  // namespace
}  // namespace kiln::testing
