// Gradcheck cases for the indexing and joining family (ops/index.cpp). Index tensors are constants
// captured by the cases; sort/topk inputs are random doubles, so ties (kinks) have probability ~0.
#include "autograd/gradcheck_registry.h"
#include "kiln/tensor/creation.h"

namespace kiln::testing {
namespace {

using In = std::vector<Tensor>;

RegisterGradcheck reg({
    {"cat", "dim 1, widths 3, 1, 2",
     [] {
       return In{leaf({2, 3}, 101), leaf({2, 1}, 102), leaf({2, 2}, 103)};
     },
     [](const In& v) { return cat(v, 1); }},
    {"cat", "dim -1 with a constant input and a legacy empty one",
     [] {
       return In{leaf({3, 2}, 104), Tensor(leaf({3, 2}, 105).data()),
                 Tensor(kernels::empty({0}, kFloat64))};
     },
     [](const In& v) { return cat(v, -1); }},
    {"stack", "dim 1",
     [] {
       return In{leaf({2, 3}, 106), leaf({2, 3}, 107)};
     },
     [](const In& v) { return stack(v, 1); }},
    {"stack", "dim -1 (new last dim)",
     [] {
       return In{leaf({3}, 108), leaf({3}, 109), leaf({3}, 110)};
     },
     [](const In& v) { return stack(v, -1); }},
    {"split", "split_size 2 over 5, last piece unused",
     [] {
       return In{leaf({3, 5}, 111)};
     },
     [](const In& v) {
       std::vector<Tensor> p = split(v[0], 2, 1);
       return add(mul(p[0], 2.0), p[1]);
     }},
    {"split", "chunk 3 over 5 (sizes 2, 2, 1)",
     [] {
       return In{leaf({5, 2}, 112)};
     },
     [](const In& v) {
       std::vector<Tensor> p = chunk(v[0], 3, 0);
       return mul(p[2], p[0].slice(0, 1, 2));
     }},
    {"index_select", "dim 1 with repeated indices",
     [] {
       return In{leaf({3, 4}, 113)};
     },
     [](const In& v) {
       return index_select(v[0], 1, tensor({3, 0, 3}));
     }},
    {"index_select", "dim 0 of 3-D",
     [] {
       return In{leaf({4, 2, 3}, 114)};
     },
     [](const In& v) {
       return index_select(v[0], 0, tensor({2, 2, 1, 0, 3}));
     }},
    {"gather", "dim 1, index smaller than input",
     [] {
       return In{leaf({3, 4}, 115)};
     },
     [](const In& v) {
       return gather(v[0], 1, tensor({0, 3, 3, 1, 1, 1}, {2, 3}));
     }},
    {"gather", "dim 0",
     [] {
       return In{leaf({3, 2}, 116)};
     },
     [](const In& v) {
       return gather(v[0], 0, tensor({2, 0, 1, 1}, {2, 2}));
     }},
    {"scatter_add", "dim 0, collisions, src larger than index",
     [] {
       return In{leaf({3, 4}, 117), leaf({3, 4}, 118)};
     },
     [](const In& v) {
       return scatter_add(v[0], 0, tensor({0, 2, 0, 1, 0, 2}, {2, 3}), v[1]);
     }},
    {"scatter_add", "dim -1, src only",
     [] {
       return In{Tensor(leaf({2, 3}, 119).data()), leaf({2, 4}, 120)};
     },
     [](const In& v) {
       return scatter_add(v[0], -1, tensor({2, 2, 0, 1, 0, 0, 0, 2}, {2, 4}), v[1]);
     }},
    {"embedding", "repeated ids, padding_idx not hit",
     [] {
       return In{leaf({5, 3}, 121)};
     },
     [](const In& v) {
       return embedding(v[0], tensor({1, 3, 1, 0, 3, 3}, {2, 3}), 4);
     }},
    // padding_idx hit: its row's gradient is zero by definition (PyTorch), not the true derivative,
    // so the row is a separate input without requires_grad and every other row is checked.
    // (tests/autograd/index_ops_test.cpp checks that the padding row's gradient is exactly zero.)
    {"embedding", "padding_idx 2 hit, other rows checked",
     [] {
       Tensor pad = leaf({1, 3}, 123);
       pad.requires_grad_(false);
       return In{leaf({2, 3}, 122), pad, leaf({2, 3}, 124)};
     },
     [](const In& v) {
       return embedding(cat({v[0], v[1], v[2]}, 0), tensor({2, 3, 2, 0, 4, 1}, {2, 3}), 2);
     }},
    {"sort", "dim 0 descending",
     [] {
       return In{leaf({4, 3}, 122)};
     },
     [](const In& v) { return sort(v[0], 0, true).values; }},
    {"sort", "dim -1 ascending",
     [] {
       return In{leaf({2, 5}, 123)};
     },
     [](const In& v) { return sort(v[0]).values; }},
    {"topk", "k 2 largest along -1",
     [] {
       return In{leaf({3, 5}, 124)};
     },
     [](const In& v) { return topk(v[0], 2).values; }},
    {"topk", "k 3 smallest along 0",
     [] {
       return In{leaf({4, 2}, 125)};
     },
     [](const In& v) { return topk(v[0], 3, 0, false).values; }},
    {"pad", "two dims, padding and cropping",
     [] {
       return In{leaf({2, 3, 4}, 126)};
     },
     [](const In& v) {
       return pad(v[0], {1, 2, -1, 1}, 0.5);
     }},
});

}  // namespace
}  // namespace kiln::testing
