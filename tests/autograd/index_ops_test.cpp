// Indexing and joining ops at the Tensor API: gradient semantics gradcheck cannot see (padding
// rows, non-differentiable outputs), the attributes ONNX export reads, one error test per op, and a
// disabled timing of the embedding backward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/op.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/index.h"
#include "kiln/tensor/parallel.h"

namespace kiln {
namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// ---------------------------------------------------------------- gradient semantics

TEST(EmbeddingOp, PaddingRowGetsNoGradientAndRepeatedIdsAccumulate) {
  Tensor w = ones({5, 2}).requires_grad_();
  Tensor ids = tensor({1, 4, 1, 4, 0, 1}, {2, 3});
  Tensor y = embedding(w, ids, /*padding_idx=*/4);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2}));
  sum(y).backward();
  // Row 1 is used three times, row 0 once, row 4 (padding) twice but gets zero.
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{1, 1, 3, 3, 0, 0, 0, 0, 0, 0}));
}

TEST(IndexSelectOp, RepeatedIndicesAccumulate) {
  Tensor x = tensor({1.0, 2.0, 3.0}).requires_grad_();
  sum(index_select(x, 0, tensor({2, 2, 0}))).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 0, 2}));
}

TEST(SplitOp, PiecesShareStorageAndUnusedPiecesGetZeroGradient) {
  Tensor x = tensor({1.f, 2.f, 3.f, 4.f, 5.f}).requires_grad_();
  std::vector<Tensor> p = split(x, 2);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_TRUE(p[1].data().shares_storage(x.data()));
  sum(p[1] * 3.0).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0, 0, 3, 3, 0}));
  EXPECT_EQ(chunk(x, 4).size(), 3u);  // torch.chunk: ceil(5 / 4) = 2 per piece
}

TEST(CatOp, MixedDtypeGradientsComeBackInEachInputsDtype) {
  Tensor a = ones({2}, kFloat32).requires_grad_();
  Tensor b = ones({3}, kFloat64).requires_grad_();
  Tensor y = cat({a, b});
  EXPECT_EQ(y.dtype(), kFloat64);
  sum(y * 2.0).backward();
  EXPECT_EQ(a.grad().dtype(), kFloat32);
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{2, 2, 2}));
}

TEST(SortOp, IndicesAreNotDifferentiableAndValuesScatterBack) {
  Tensor x = tensor({3.0, 1.0, 2.0}).requires_grad_();
  TensorPair s = sort(x, 0, /*descending=*/true);
  EXPECT_FALSE(s.indices.requires_grad());
  EXPECT_EQ(s.indices.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1}));
  sum(s.values * tensor({1.0, 10.0, 100.0})).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 100, 10}));
}

TEST(TopkOp, GradientReachesOnlyTheChosenElements) {
  Tensor x = tensor({0.5, 4.0, 4.0, 1.0}).requires_grad_();
  TensorPair t = topk(x, 2);
  EXPECT_EQ(t.indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  sum(t.values).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 1, 0}));
}

TEST(OneHotOp, IsNotDifferentiable) {
  Tensor y = one_hot(tensor({2, 0}), 3);
  EXPECT_EQ(y.dtype(), kInt64);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 1, 0, 0}));
}

// ---------------------------------------------------------------- attributes for ONNX export

TEST(IndexOps, RecordTheAttributesOnnxExportNeeds) {
  Tracer tr;
  Tensor x = ones({2, 3, 4}).requires_grad_();
  cat({x, x}, -1);
  stack({x, x}, 1);
  chunk(x, 2, 2);
  index_select(x, -2, tensor({0, 2}));
  gather(x, 0, zeros({1, 3, 4}, kInt64));
  scatter_add(x, 1, zeros({2, 1, 4}, kInt64), x);
  embedding(ones({6, 4}), tensor({1, 2}), 0);
  one_hot(tensor({1, 2}), 5);
  sort(x, 1, true);
  topk(x, 3, -1, false);
  pad(x, {1, 2, 3, 4}, 0.25);
  const auto& ev = tr.events();
  ASSERT_EQ(ev.size(), 11u);
  auto i64 = [&](size_t e, const char* name) { return attr<int64_t>(ev[e].attrs, name); };
  EXPECT_EQ(ev[0].name, "cat");
  EXPECT_EQ(i64(0, "axis"), 2);
  EXPECT_EQ(ev[1].name, "stack");
  EXPECT_EQ(i64(1, "axis"), 1);
  EXPECT_EQ(ev[2].name, "split");
  EXPECT_EQ(attr<std::vector<int64_t>>(ev[2].attrs, "split"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(ev[3].name, "index_select");
  EXPECT_EQ(i64(3, "axis"), 1);
  EXPECT_EQ(ev[4].name, "gather");
  EXPECT_EQ(ev[5].name, "scatter_add");
  EXPECT_EQ(attr<std::string>(ev[5].attrs, "reduction"), "add");
  EXPECT_EQ(ev[6].name, "embedding");
  EXPECT_EQ(i64(6, "padding_idx"), 0);
  EXPECT_EQ(ev[7].name, "one_hot");
  EXPECT_EQ(i64(7, "num_classes"), 5);
  EXPECT_EQ(ev[8].name, "sort");
  EXPECT_EQ(i64(8, "descending"), 1);
  EXPECT_EQ(ev[9].name, "topk");
  EXPECT_EQ(i64(9, "k"), 3);
  EXPECT_EQ(i64(9, "axis"), 2);
  EXPECT_EQ(i64(9, "largest"), 0);
  EXPECT_EQ(ev[10].name, "pad");
  // F.pad (1, 2, 3, 4) on (2, 3, 4): last dim (1, 2), middle dim (3, 4); ONNX: begins, then ends.
  EXPECT_EQ(attr<std::vector<int64_t>>(ev[10].attrs, "pads"),
            (std::vector<int64_t>{0, 3, 1, 0, 4, 2}));
  EXPECT_EQ(attr<double>(ev[10].attrs, "value"), 0.25);
  EXPECT_EQ(attr<std::string>(ev[10].attrs, "mode"), "constant");
}

// ---------------------------------------------------------------- one error per op

TEST(IndexOps, ErrorsNameTheOpAndTheOffendingShapesOrValues) {
  Tensor x = ones({2, 5});
  EXPECT_EQ(
      error_of([&] {
        cat({x, ones({3, 4})}, 0);
      }),
      "cat: input 0 [2, 5] vs input 1 [3, 4] differ at dim 1 (sizes must match except in dim 0)");
  EXPECT_EQ(error_of([&] {
              stack({x, ones({5, 2})});
            }),
            "stack: input 1 has shape [5, 2] but input 0 has shape [2, 5] (all inputs must have "
            "the same shape)");
  EXPECT_EQ(error_of([&] { split(x, -1, 1); }),
            "split: split_size -1 is invalid for dim 1 of size 5 (split_size must be > 0, or 0 "
            "when the dim is "
            "empty)");
  EXPECT_EQ(error_of([&] { chunk(x, 2, 2); }),
            "chunk: dim 2 is out of range for a tensor of 2 dims (expected -2..1)");
  EXPECT_EQ(error_of([&] { index_select(x, 1, tensor({5})); }),
            "index_select: index 5 out of range for dim 1 of size 5 (indices must be in [0, 5))");
  EXPECT_EQ(error_of([&] {
              gather(x, 1, tensor({7}, {1, 1}));
            }),
            "gather: index 7 out of range for dim 1 of size 5 (indices must be in [0, 5))");
  EXPECT_EQ(error_of([&] {
              scatter_add(x, 0, tensor({0, 0, 0}, {1, 3}), ones({1, 2}));
            }),
            "scatter_add: index [1, 3] is larger than src [1, 2] at dim 1 (index.size(d) <= "
            "src.size(d))");
  EXPECT_EQ(error_of([&] {
              embedding(ones({50265, 2}), tensor({50300}));
            }),
            "embedding: id 50300 out of range for 50265 rows (ids must be in [0, 50265))");
  EXPECT_EQ(error_of([&] {
              embedding(ones({4, 2}), tensor({1}), 4);
            }),
            "embedding: padding_idx 4 out of range for 4 rows (must be in [0, 4), or -1 for none)");
  EXPECT_EQ(error_of([&] { one_hot(tensor({3}), 2); }),
            "one_hot: id 3 out of range for 2 classes (ids must be in [0, 2))");
  EXPECT_EQ(error_of([&] { sort(x, 2); }),
            "sort: dim 2 is out of range for a tensor of 2 dims (expected -2..1)");
  EXPECT_EQ(error_of([&] { topk(x, 6); }),
            "topk: k 6 out of range for dim 1 of size 5 in [2, 5] (k must be in [0, 5])");
  EXPECT_EQ(error_of([&] {
              pad(x, {-3, -3});
            }),
            "pad: dim 1 of size 5 with pads (-3, -3) would have size -1 (input [2, 5]; sizes must "
            "stay >= 0)");
}

}  // namespace
}  // namespace kiln
