// Gradcheck cases for the neural-network ops (autograd/ops/nn.cpp): float64, small, central
// differences. Ops that draw random numbers (dropout, attention dropout) create their Generator
// inside fn with a fixed seed, so every evaluation of fn sees the same mask and the finite
// differences are of one function.
#include <limits>

#include "autograd/gradcheck_registry.h"

namespace kiln::testing {
namespace {

const double kInf = std::numeric_limits<double>::infinity();

Tensor ids(std::vector<int64_t> v, Shape shape = {}) {
  return from_vector<int64_t>(v, std::move(shape));
}

// A constant (no grad) float64 tensor.
Tensor constant(std::vector<double> v, Shape shape) {
  return from_vector<double>(v, std::move(shape));
}

// Running buffers made inside fn, so each evaluation starts from the same statistics.
Tensor running_mean3() {
  return constant({0.1, -0.2, 0.3}, {3});
}
Tensor running_var3() {
  return constant({0.8, 1.2, 0.5}, {3});
}

// Additive masks: key 4 padded for every query; query 2 of the second head fully masked.
Tensor padding_mask() {
  return constant({0, 0, 0, 0, -kInf}, {1, 1, 1, 5});
}
Tensor mask_with_dead_row() {
  std::vector<double> m(2 * 3 * 5, 0.0);
  for (int j = 0; j < 5; ++j) m[1 * 15 + 2 * 5 + j] = -kInf;
  m[4] = -1e9;
  return constant(m, {1, 2, 3, 5});
}

const RegisterGradcheck reg({
    {"softmax", "last dim",
     [] {
       return std::vector<Tensor>{leaf({3, 4}, 1, -2, 2)};
     },
     [](const std::vector<Tensor>& in) { return softmax(in[0], -1); }},
    {"softmax", "middle dim",
     [] {
       return std::vector<Tensor>{leaf({2, 3, 4}, 2, -2, 2)};
     },
     [](const std::vector<Tensor>& in) { return softmax(in[0], 1); }},
    {"log_softmax", "last dim",
     [] {
       return std::vector<Tensor>{leaf({3, 5}, 3, -2, 2)};
     },
     [](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); }},
    {"log_softmax", "dim 0",
     [] {
       return std::vector<Tensor>{leaf({4, 3}, 4, -2, 2)};
     },
     [](const std::vector<Tensor>& in) { return log_softmax(in[0], 0); }},
    {"layer_norm", "affine, last dim",
     [] {
       return std::vector<Tensor>{leaf({3, 5}, 5, -2, 2), leaf({5}, 6, 0.5, 1.5), leaf({5}, 7)};
     },
     [](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}, in[1], in[2]); }},
    {"layer_norm", "affine, last two dims",
     [] {
       return std::vector<Tensor>{leaf({2, 3, 4}, 8, -2, 2), leaf({3, 4}, 9, 0.5, 1.5),
                                  leaf({3, 4}, 10)};
     },
     [](const std::vector<Tensor>& in) {
       return layer_norm(in[0], {3, 4}, in[1], in[2], 1e-3);
     }},
    {"layer_norm", "no affine",
     [] {
       return std::vector<Tensor>{leaf({4, 6}, 11, -2, 2)};
     },
     [](const std::vector<Tensor>& in) { return layer_norm(in[0], {6}); }},
    {"cross_entropy", "mean",
     [] {
       return std::vector<Tensor>{leaf({4, 5}, 12, -2, 2)};
     },
     [](const std::vector<Tensor>& in) {
       return cross_entropy(in[0], ids({1, 0, 4, 2}));
     }},
    {"cross_entropy", "weights, ignore_index, smoothing, mean",
     [] {
       return std::vector<Tensor>{leaf({5, 4}, 13, -2, 2)};
     },
     [](const std::vector<Tensor>& in) {
       return cross_entropy(in[0], ids({1, 2, 3, 2, 0}), constant({0.5, 1.0, 2.0, 1.5}, {4}), 2,
                            0.2, "mean");
     }},
    {"cross_entropy", "weights, smoothing, sum",
     [] {
       return std::vector<Tensor>{leaf({3, 4}, 14, -2, 2)};
     },
     [](const std::vector<Tensor>& in) {
       return cross_entropy(in[0], ids({3, 0, 1}), constant({0.5, 1.0, 2.0, 1.5}, {4}), -100, 0.1,
                            "sum");
     }},
    {"cross_entropy", "(B, K, d) none",
     [] {
       return std::vector<Tensor>{leaf({2, 3, 2}, 15, -2, 2)};
     },
     [](const std::vector<Tensor>& in) {
       return cross_entropy(in[0], ids({0, 2, 1, 1}, {2, 2}), constant({1.0, 0.5, 2.0}, {3}), 1,
                            0.3, "none");
     }},
    {"nll_loss", "weights, ignore_index, mean",
     [] {
       return std::vector<Tensor>{leaf({4, 3}, 16, -3, 0)};
     },
     [](const std::vector<Tensor>& in) {
       return nll_loss(in[0], ids({0, 2, 1, 2}), constant({1.0, 0.5, 2.0}, {3}), 1, "mean");
     }},
    {"nll_loss", "none",
     [] {
       return std::vector<Tensor>{leaf({3, 4}, 17, -3, 0)};
     },
     [](const std::vector<Tensor>& in) {
       return nll_loss(in[0], ids({3, 0, 1}), {}, -100, "none");
     }},
    {"dropout", "training, fixed seed",
     [] {
       return std::vector<Tensor>{leaf({4, 5}, 18)};
     },
     [](const std::vector<Tensor>& in) {
       Generator g(7);
       return dropout(in[0], 0.4, true, &g);
     }},
    {"dropout", "eval (identity)",
     [] {
       return std::vector<Tensor>{leaf({3, 2}, 19)};
     },
     [](const std::vector<Tensor>& in) { return dropout(in[0], 0.4, false); }},
    {"dropout_add_layer_norm", "training, fixed seed, affine",
     [] {
       return std::vector<Tensor>{leaf({3, 2, 5}, 60), leaf({3, 2, 5}, 61), leaf({5}, 62, 0.5, 1.5),
                                  leaf({5}, 63)};
     },
     [](const std::vector<Tensor>& in) {
       Generator g(9);
       return dropout_add_layer_norm(in[0], in[1], 0.3, true, &g, {5}, in[2], in[3]);
     }},
    {"dropout_add_layer_norm", "training, no affine, last two dims",
     [] {
       return std::vector<Tensor>{leaf({2, 3, 4}, 64), leaf({2, 3, 4}, 65)};
     },
     [](const std::vector<Tensor>& in) {
       Generator g(10);
       return dropout_add_layer_norm(in[0], in[1], 0.5, true, &g, {3, 4}, {}, {}, 1e-3);
     }},
    {"batch_norm", "training, batch statistics",
     [] {
       return std::vector<Tensor>{leaf({4, 3, 2}, 20, -2, 2), leaf({3}, 21, 0.5, 1.5),
                                  leaf({3}, 22)};
     },
     [](const std::vector<Tensor>& in) {
       return batch_norm(in[0], running_mean3(), running_var3(), in[1], in[2], true, 0.1, 1e-5);
     }},
    {"batch_norm", "eval, running statistics",
     [] {
       return std::vector<Tensor>{leaf({2, 3, 2}, 23, -2, 2), leaf({3}, 24, 0.5, 1.5),
                                  leaf({3}, 25)};
     },
     [](const std::vector<Tensor>& in) {
       return batch_norm(in[0], running_mean3(), running_var3(), in[1], in[2], false, 0.1, 1e-5);
     }},
    {"scaled_dot_product_attention", "padding mask",
     [] {
       return std::vector<Tensor>{leaf({1, 2, 3, 4}, 26), leaf({1, 2, 5, 4}, 27),
                                  leaf({1, 2, 5, 3}, 28)};
     },
     [](const std::vector<Tensor>& in) {
       return scaled_dot_product_attention(in[0], in[1], in[2], padding_mask());
     }},
    {"scaled_dot_product_attention", "fully masked row, -1e9 entry",
     [] {
       return std::vector<Tensor>{leaf({1, 2, 3, 4}, 29), leaf({1, 2, 5, 4}, 30),
                                  leaf({1, 2, 5, 3}, 31)};
     },
     [](const std::vector<Tensor>& in) {
       return scaled_dot_product_attention(in[0], in[1], in[2], mask_with_dead_row());
     }},
    {"scaled_dot_product_attention", "dropout with a fixed seed",
     [] {
       return std::vector<Tensor>{leaf({2, 1, 3, 4}, 32), leaf({2, 1, 4, 4}, 33),
                                  leaf({2, 1, 4, 2}, 34)};
     },
     [](const std::vector<Tensor>& in) {
       Generator g(11);
       return scaled_dot_product_attention(in[0], in[1], in[2], {}, 0.3, true, &g);
     }},
    {"scaled_dot_product_attention", "learned additive mask",
     [] {
       return std::vector<Tensor>{leaf({1, 2, 2, 3}, 35), leaf({1, 2, 4, 3}, 36),
                                  leaf({1, 2, 4, 3}, 37), leaf({1, 1, 2, 4}, 38)};
     },
     [](const std::vector<Tensor>& in) {
       return scaled_dot_product_attention(in[0], in[1], in[2], in[3]);
     }},
});

}  // namespace
}  // namespace kiln::testing
