// Indexing and joining kernels: each against its naive reference twin, PyTorch semantics spelled
// out (negative dims, empty pieces, torch.chunk's uneven sizes, NaN order), error messages, and
// identical results at 1 and several threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/index.h"
#include "kiln/tensor/parallel.h"
#include "test_support.h"

namespace kiln::kernels {
namespace {

// Same shape, same dtype, same bytes (so NaNs and signed zeros compare too).
void expect_same(const Array& a, const Array& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  Array ac = a.contiguous(), bc = b.contiguous();
  EXPECT_EQ(std::memcmp(ac.raw_data(), bc.raw_data(), ac.nbytes()), 0)
      << "values differ for shape " << fmt::format("{}", a.shape());
}

template <typename T>
std::vector<T> values(const Array& a) {
  Array c = a.contiguous();
  return std::vector<T>(c.data<T>(), c.data<T>() + c.numel());
}

// The message of the kiln::Error that f throws, or "no error".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

Array random(const Shape& s, DType dt, uint64_t seed) {
  Generator g(seed);
  if (dt == kBool) return randint(0, 2, s, kInt64, &g).to(kBool);
  if (is_floating(dt)) return randn(s, 0.0, 1.0, dt, &g);
  return randint(-50, 50, s, dt, &g);
}
Array ids(const Shape& s, int64_t hi, uint64_t seed) {
  Generator g(seed);
  return randint(0, hi, s, kInt64, &g);
}

// Runs f at 1 thread and at 4, restoring the thread count afterwards.
template <typename F>
void at_1_and_4_threads(F&& f) {
  kiln::testing::ScopedNumThreads threads(1);
  Array one = f();
  threads.set(4);
  Array four = f();
  expect_same(one, four);
}

const std::vector<DType> kAllDtypes = {kFloat32, kFloat64, kInt64, kInt32, kUInt8, kBool};

// ---------------------------------------------------------------- cat / stack

TEST(Cat, MatchesReferenceForEveryDimAndDtype) {
  for (DType dt : kAllDtypes)
    for (int64_t dim : {0, 1, 2, -1, -3}) {
      Shape a{2, 3, 4}, b{2, 3, 4}, c{2, 3, 4};
      int64_t d = dim < 0 ? dim + 3 : dim;
      b[d] = 1;
      c[d] = 5;
      std::vector<Array> xs{random(a, dt, 1), random(b, dt, 2), random(c, dt, 3)};
      expect_same(cat(xs, dim), cat_reference(xs, dim));
    }
}

TEST(Cat, StridedAndMixedDtypeInputsPromote) {
  Array a = random({4, 3}, kFloat32, 1).transpose(0, 1);  // (3, 4), not contiguous
  Array b = random({3, 2}, kInt64, 2);
  Array y = cat({a, b}, 1);
  EXPECT_EQ(y.dtype(), kFloat32);
  EXPECT_EQ(y.shape(), (Shape{3, 6}));
  expect_same(y, cat_reference({a, b}, 1));
}

TEST(Cat, SkipsLegacyEmptyAndKeepsZeroSizedPieces) {
  // torch.cat([ones(2, 3), empty(0)]) is (2, 3): 1-D empty inputs are skipped.
  Array y = cat({ones({2, 3}), empty({0})}, 0);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  // A (2, 0) piece contributes nothing but is still checked.
  Array z = cat({ones({2, 2}), empty({2, 0}), zeros({2, 1})}, 1);
  EXPECT_EQ(values<float>(z), (std::vector<float>{1, 1, 0, 1, 1, 0}));
  EXPECT_EQ(cat({empty({0}), empty({0})}, 0).shape(), (Shape{0}));
}

TEST(Cat, ShapeErrorsNameTheOpAndBothShapes) {
  EXPECT_EQ(
      error_of([] {
        cat({ones({2, 3}), ones({2, 4})}, 0);
      }),
      "cat: input 0 [2, 3] vs input 1 [2, 4] differ at dim 1 (sizes must match except in dim 0)");
  EXPECT_EQ(
      error_of([] {
        cat({ones({2, 3}), ones({2})}, 0);
      }),
      "cat: input 1 has 1 dims but input 0 has 2 (all inputs must have the same number of dims)");
  EXPECT_EQ(error_of([] { cat({}, 0); }), "cat: expected a non-empty list of arrays");
  EXPECT_NE(error_of([] {
              cat({ones({2, 3})}, 2);
            }).find("cat: dim 2 is out of range"),
            std::string::npos);
}

TEST(Stack, EqualsCatOfUnsqueezedInputs) {
  std::vector<Array> xs{random({2, 3}, kFloat32, 1), random({2, 3}, kFloat32, 2)};
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    int64_t d = dim < 0 ? dim + 3 : dim;
    expect_same(stack(xs, dim), cat_reference({xs[0].unsqueeze(d), xs[1].unsqueeze(d)}, d));
  }
  EXPECT_EQ(stack(xs, -1).shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(error_of([&] {
              stack({xs[0], ones({3, 2})}, 0);
            }),
            "stack: input 1 has shape [3, 2] but input 0 has shape [2, 3] (all inputs must have "
            "the same shape)");
}

// ---------------------------------------------------------------- split / chunk

TEST(Split, PiecesAreViewsWithTheLastOneSmaller) {
  Array x = arange(0, 10);
  std::vector<Array> p = split(x, 3);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(values<int64_t>(p[3]), (std::vector<int64_t>{9}));
  EXPECT_TRUE(p[1].shares_storage(x));
  // Negative dim, and a split_size beyond the dim gives one piece.
  Array m = random({2, 5}, kFloat32, 3);
  std::vector<Array> q = split(m, 2, -1);
  ASSERT_EQ(q.size(), 3u);
  expect_same(q[2], m.slice(1, 4, 5));
  EXPECT_EQ(split(m, 7, 1).size(), 1u);
  // torch.split(empty(0, 3), 2) is one (0, 3) piece; split_size 0 only on an empty dim.
  std::vector<Array> e = split(empty({0, 3}), 2);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].shape(), (Shape{0, 3}));
  EXPECT_EQ(split(empty({0, 3}), 0).size(), 1u);
  EXPECT_EQ(error_of([&] { split(m, 0, 1); }),
            "split: split_size 0 is invalid for dim 1 of size 5 (split_size must be > 0, or 0 when "
            "the dim is empty)");
  EXPECT_EQ(error_of([&] {
              split_with_sizes(m, {2, 2}, 1);
            }),
            "split: sizes [2, 2] sum to 4 but dim 1 of [2, 5] has size 5 (they must be equal)");
}

TEST(Chunk, FollowsTorchChunkSizes) {
  // torch.chunk uses pieces of ceil(n / chunks) and may return fewer pieces than asked.
  EXPECT_EQ(chunk_sizes(6, 4), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(chunk_sizes(5, 3), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(chunk_sizes(10, 4), (std::vector<int64_t>{3, 3, 3, 1}));
  EXPECT_EQ(chunk_sizes(2, 5), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(chunk_sizes(0, 3), (std::vector<int64_t>{0, 0, 0}));
  Array x = random({3, 7}, kFloat64, 4);
  std::vector<Array> p = chunk(x, 3, -1);
  ASSERT_EQ(p.size(), 3u);
  expect_same(p[2], x.slice(1, 6, 7));
  EXPECT_EQ(error_of([&] { chunk(x, 0); }), "chunk: chunks must be > 0, got 0");
}

// ---------------------------------------------------------------- index_select / gather /
// scatter_add

TEST(IndexSelect, MatchesReferenceForEveryDimAndDtype) {
  for (DType dt : kAllDtypes)
    for (int64_t dim : {0, 1, 2, -1}) {
      Array x = random({4, 5, 6}, dt, 7);
      int64_t d = dim < 0 ? dim + 3 : dim;
      Array index = ids({7}, x.size(d), 8);  // repeats likely
      expect_same(index_select(x, dim, index), index_select_reference(x, dim, index));
    }
}

TEST(IndexSelect, AcceptsInt32StridedInputsAndEmptyIndex) {
  Array x = random({6, 4}, kFloat32, 1).transpose(0, 1);  // (4, 6) strided
  Array i32 = from_vector(std::vector<int32_t>{5, 0, 5});
  expect_same(index_select(x, 1, i32), index_select_reference(x, 1, i32.to(kInt64)));
  EXPECT_EQ(index_select(x, 0, empty({0}, kInt64)).shape(), (Shape{0, 6}));
  // A 0-d index selects one entry and keeps the dim (as torch).
  EXPECT_EQ(index_select(x, 0, full({}, 2, kInt64)).shape(), (Shape{1, 6}));
}

TEST(IndexSelect, RangeErrorsNameTheOpTheIndexAndTheDim) {
  Array x = ones({3, 5});
  EXPECT_EQ(error_of([&] {
              index_select(x, 1, from_vector(std::vector<int64_t>{0, 7}));
            }),
            "index_select: index 7 out of range for dim 1 of size 5 (indices must be in [0, 5))");
  EXPECT_EQ(error_of([&] { index_select(x, 1, from_vector(std::vector<int64_t>{-1})); }),
            "index_select: index -1 out of range for dim 1 of size 5 (indices must be in [0, 5))");
  EXPECT_EQ(error_of([&] { index_select(x, 0, ones({2})); }),
            "index_select: index dtype float32 is not an index type (int64 or int32 required)");
  EXPECT_EQ(error_of([&] {
              index_select(x, 0, zeros({2, 2}, kInt64));
            }),
            "index_select: index must be 1-D, got shape [2, 2]");
}

TEST(IndexAddZeros, SumsRepeatedIndicesInOrder) {
  for (int64_t dim : {0, 1, 2}) {
    Shape s{3, 4, 5};
    Array index = ids({9}, s[dim], 11);
    Shape ss = s;
    ss[dim] = 9;
    Array src = random(ss, kFloat64, 12);
    // index_add along dim == scatter_add with the index broadcast over the other dims.
    Shape is(3, 1);
    is[dim] = 9;
    Array full_index = index.reshape(is).expand(ss).contiguous();
    expect_same(index_add_zeros(s, dim, index, src),
                scatter_add_reference(zeros(s, kFloat64), dim, full_index, src));
  }
}

TEST(Gather, MatchesReferenceIncludingSmallerIndexAndNegativeDim) {
  for (DType dt : kAllDtypes)
    for (int64_t dim : {0, 1, -1}) {
      Array x = random({4, 6}, dt, 21);
      int64_t d = dim < 0 ? dim + 2 : dim;
      Shape is{3, 5};  // smaller than x in the other dim, as torch allows
      is[d] = 8;
      Array index = ids(is, x.size(d), 22);
      Array y = gather(x, dim, index);
      EXPECT_EQ(y.shape(), is);
      expect_same(y, gather_reference(x, dim, index));
    }
  Array xt = random({5, 4, 3}, kFloat32, 23).permute({2, 0, 1});  // (3, 5, 4) strided
  Array index = ids({3, 2, 4}, 5, 24);
  expect_same(gather(xt, 1, index), gather_reference(xt, 1, index));
  // torch.gather(arange(10.).view(2, 5), 1, [[4], [0]]) == [[4.], [5.]]
  Array g = gather(arange(0, 10, 1, kFloat32).view({2, 5}), 1,
                   from_vector(std::vector<int64_t>{4, 0}, {2, 1}));
  EXPECT_EQ(values<float>(g), (std::vector<float>{4, 5}));
}

TEST(Gather, ErrorsNameTheOpShapesAndIndex) {
  Array x = ones({2, 5});
  EXPECT_EQ(error_of([&] {
              gather(x, 1, from_vector(std::vector<int64_t>{7}, {1, 1}));
            }),
            "gather: index 7 out of range for dim 1 of size 5 (indices must be in [0, 5))");
  EXPECT_EQ(error_of([&] {
              gather(x, 1, zeros({3, 1}, kInt64));
            }),
            "gather: index [3, 1] is larger than input [2, 5] at dim 0 (index.size(d) <= "
            "input.size(d) for d != 1)");
  EXPECT_EQ(error_of([&] { gather(x, 1, zeros({2}, kInt64)); }),
            "gather: index [2] has 1 dims but input [2, 5] has 2 (they must have the same number "
            "of dims)");
}

TEST(ScatterAdd, MatchesReferenceWithCollisionsAndLargerSrc) {
  for (DType dt : {kFloat32, kFloat64, kInt64, kInt32})
    for (int64_t dim : {0, 1, 2, -2}) {
      Array x = random({3, 4, 5}, dt, 31);
      int64_t d = dim < 0 ? dim + 3 : dim;
      Shape is{2, 3, 4};
      is[d] = 7;  // more entries than the dim has: collisions guaranteed
      Shape ss{3, 4, 5};
      ss[d] = 8;
      Array index = ids(is, x.size(d), 32), src = random(ss, dt, 33);
      expect_same(scatter_add(x, dim, index, src), scatter_add_reference(x, dim, index, src));
    }
  // torch: zeros(3).scatter_add(0, [0, 2, 0], [1., 2., 4.]) == [5., 0., 2.]
  Array y = scatter_add(zeros({3}), 0, from_vector(std::vector<int64_t>{0, 2, 0}),
                        from_vector(std::vector<float>{1, 2, 4}));
  EXPECT_EQ(values<float>(y), (std::vector<float>{5, 0, 2}));
}

TEST(ScatterAdd, ErrorsNameTheOpShapesAndIndex) {
  Array x = zeros({3, 4});
  EXPECT_EQ(error_of([&] {
              scatter_add(x, 0, from_vector(std::vector<int64_t>{3}, {1, 1}), ones({1, 1}));
            }),
            "scatter_add: index 3 out of range for dim 0 of size 3 (indices must be in [0, 3))");
  EXPECT_EQ(error_of([&] {
              scatter_add(x, 0, zeros({2, 2}, kInt64), ones({1, 2}));
            }),
            "scatter_add: index [2, 2] is larger than src [1, 2] at dim 0 (index.size(d) <= "
            "src.size(d))");
  EXPECT_EQ(error_of([&] {
              scatter_add(x, 0, zeros({1, 1}, kInt64), ones({1, 1}, kFloat64));
            }),
            "scatter_add: src dtype float64 differs from input dtype float32 (must be equal)");
  Array expanded = zeros({1, 4}).expand({3, 4});
  EXPECT_EQ(error_of([&] {
              scatter_add_(expanded, 1, zeros({1, 1}, kInt64), ones({1, 1}));
            }),
            "scatter_add: the output [3, 4] overlaps itself (stride 0 at dim 0); clone it first");
}

// ---------------------------------------------------------------- embedding / one_hot

TEST(Embedding, ForwardPicksRowsAndBackwardMatchesReference) {
  Array w = random({11, 6}, kFloat32, 41);
  Array i = ids({3, 4}, 11, 42);
  Array y = embedding(w, i);
  EXPECT_EQ(y.shape(), (Shape{3, 4, 6}));
  expect_same(y, index_select_reference(w, 0, i.reshape({-1})).reshape({3, 4, 6}));
  Array dy = random({3, 4, 6}, kFloat32, 43);
  for (int64_t padding : {-1, 0, 5}) {
    Array g = embedding_backward(dy, i, 11, padding);
    expect_same(g, embedding_backward_reference(dy, i, 11, padding));
  }
}

TEST(Embedding, BackwardIsTheSameAtAnyThreadCount) {
  // Large enough to split into several tasks; collisions on every row.
  Array i = ids({16, 64}, 3000, 44);
  Array dy = random({16, 64, 64}, kFloat32, 45);
  at_1_and_4_threads([&] { return embedding_backward(dy, i, 3000, 7); });
  expect_same(embedding_backward(dy, i, 3000, 7), embedding_backward_reference(dy, i, 3000, 7));
}

TEST(Embedding, OutOfRangeIdNamesTheIdAndTheRows) {
  Array w = zeros({50265, 2});
  EXPECT_EQ(error_of([&] {
              embedding(w, from_vector(std::vector<int64_t>{1, 50300, 2}));
            }),
            "embedding: id 50300 out of range for 50265 rows (ids must be in [0, 50265))");
  EXPECT_EQ(error_of([&] { embedding(zeros({4}), zeros({2}, kInt64)); }),
            "embedding: weight must be 2-D (V, C), got shape [4]");
}

TEST(OneHot, MatchesTorchAndInfersClasses) {
  Array y = one_hot(from_vector(std::vector<int64_t>{0, 2}), -1);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(values<int64_t>(y), (std::vector<int64_t>{1, 0, 0, 0, 0, 1}));
  EXPECT_EQ(one_hot(zeros({2, 3}, kInt64), 4).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(error_of([] {
              one_hot(from_vector(std::vector<int64_t>{1, 7}), 5);
            }),
            "one_hot: id 7 out of range for 5 classes (ids must be in [0, 5))");
}

// ---------------------------------------------------------------- sort / topk

TEST(Sort, MatchesStableReferenceWithTies) {
  for (DType dt : kAllDtypes)
    for (int64_t dim : {0, 1, -1})
      for (bool desc : {false, true}) {
        Generator g(51);
        Array x = randint(0, 4, {5, 9}, kInt64, &g).to(dt);  // many ties
        ValuesIndices a = sort(x, dim, desc), b = sort_reference(x, dim, desc);
        expect_same(a.values, b.values);
        expect_same(a.indices, b.indices);
      }
}

TEST(Sort, PutsNaNLastAscendingAndFirstDescendingLikeTorch) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Array x = from_vector(std::vector<float>{1, 3, nan, 3, 1, 2});
  ValuesIndices a = sort(x, 0, false);
  EXPECT_EQ(values<int64_t>(a.indices), (std::vector<int64_t>{0, 4, 5, 1, 3, 2}));
  ValuesIndices d = sort(x, 0, true);
  EXPECT_EQ(values<int64_t>(d.indices), (std::vector<int64_t>{2, 1, 3, 5, 0, 4}));
  EXPECT_TRUE(std::isnan(values<float>(d.values)[0]));
  expect_same(a.values, sort_reference(x, 0, false).values);
  EXPECT_EQ(sort(full({}, 2.0), 0).indices.item<int64_t>(), 0);
}

TEST(TopK, MatchesReferenceAndBreaksTiesByLowerIndex) {
  for (DType dt : {kFloat32, kFloat64, kInt64, kUInt8})
    for (int64_t dim : {0, 1})
      for (bool largest : {true, false})
        for (int64_t k : {0, 1, 3, 5}) {
          Generator g(61);
          Array x = randint(0, 3, {5, 7}, kInt64, &g).to(dt);
          ValuesIndices a = topk(x, k, dim, largest), b = topk_reference(x, k, dim, largest);
          expect_same(a.values, b.values);
          expect_same(a.indices, b.indices);
        }
  // Ties keep the lower index first (torch leaves tie order unspecified; Kiln pins it).
  ValuesIndices t = topk(from_vector(std::vector<float>{1, 3, 3, 2, 3}), 2);
  EXPECT_EQ(values<int64_t>(t.indices), (std::vector<int64_t>{1, 2}));
  ValuesIndices s = topk(from_vector(std::vector<float>{1, 1, 3, 1}), 2, -1, false);
  EXPECT_EQ(values<int64_t>(s.indices), (std::vector<int64_t>{0, 1}));
  // NaN counts as the largest value (as torch).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(values<int64_t>(topk(from_vector(std::vector<float>{1, 3, nan, 3}), 2).indices),
            (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(values<int64_t>(topk(from_vector(std::vector<float>{nan, 3, 1}), 2, 0, false).indices),
            (std::vector<int64_t>{2, 1}));
}

TEST(TopK, KOutOfRangeNamesKAndTheDim) {
  EXPECT_EQ(error_of([] {
              topk(ones({2, 5}), 6, 1);
            }),
            "topk: k 6 out of range for dim 1 of size 5 in [2, 5] (k must be in [0, 5])");
}

// ---------------------------------------------------------------- pad

TEST(Pad, MatchesReferenceForPositiveNegativeAndMixedPads) {
  Array x = random({2, 3, 4}, kFloat32, 71);
  for (const std::vector<int64_t>& pads : std::vector<std::vector<int64_t>>{
           {1, 2}, {0, 0, 2, 1}, {1, -1, -1, 2}, {-2, -1, 0, 0, 1, 1}, {3, 0, 0, 0, 0, 2}})
    expect_same(pad(x, pads, 1.5), pad_reference(x, pads, 1.5));
  Array xi = random({3, 4}, kInt64, 72).transpose(0, 1);
  expect_same(pad(xi, {1, 1}, 7), pad_reference(xi, {1, 1}, 7));
  // F.pad(arange(6.).view(2, 3), (1, -1, -1, 2)) == [[0, 3, 4], [0, 0, 0], [0, 0, 0]]
  Array y = pad(arange(0, 6, 1, kFloat32).view({2, 3}), {1, -1, -1, 2});
  EXPECT_EQ(values<float>(y), (std::vector<float>{0, 3, 4, 0, 0, 0, 0, 0, 0}));
}

TEST(Pad, BackwardTakesTheInputsPartAndOnnxOrderIsBeginsThenEnds) {
  Array dy = random({3, 5}, kFloat64, 73);
  // x (2, 3) padded by (1, 1) on the last dim, (-1, 2) on the first: dy rows 0..0 hold x row 1.
  Array dx = pad_backward(dy, {2, 3}, {1, 1, -1, 2});
  EXPECT_EQ(dx.shape(), (Shape{2, 3}));
  expect_same(dx.select(0, 1), dy.select(0, 0).slice(0, 1, 4));
  EXPECT_EQ(values<double>(dx.select(0, 0)), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(pads_to_onnx({1, 2, 3, 4}, 3), (std::vector<int64_t>{0, 3, 1, 0, 4, 2}));
}

TEST(Pad, ErrorsNameTheOpPadsAndShape) {
  EXPECT_EQ(error_of([] {
              pad(ones({2, 3}), {1, 1, 1});
            }),
            "pad: pads [1, 1, 1] has 3 entries (it must hold a (left, right) pair per dim)");
  EXPECT_EQ(
      error_of([] {
        pad(ones({3}), {1, 1, 1, 1});
      }),
      "pad: pads [1, 1, 1, 1] cover 2 dims but the input [3] has 1 (at most 2 entries per dim)");
  EXPECT_EQ(error_of([] {
              pad(ones({2, 3}), {-2, -2});
            }),
            "pad: dim 1 of size 3 with pads (-2, -2) would have size -1 (input [2, 3]; sizes must "
            "stay >= 0)");
}

// ---------------------------------------------------------------- thread-count independence

TEST(IndexKernels, ResultsAreTheSameAtOneAndFourThreads) {
  Array x = random({64, 700}, kFloat32, 81);
  Array row_ids = ids({1000}, 64, 82);
  at_1_and_4_threads([&] { return index_select(x, 0, row_ids); });
  at_1_and_4_threads([&] {
    return index_add_zeros({64, 700}, 0, row_ids, random({1000, 700}, kFloat32, 83));
  });
  Array gi = ids({64, 700}, 700, 84);
  at_1_and_4_threads([&] { return gather(x, 1, gi); });
  at_1_and_4_threads([&] { return scatter_add(x, 1, gi, x); });
  at_1_and_4_threads([&] { return scatter_add(x, 0, ids({64, 700}, 64, 85), x); });
  at_1_and_4_threads([&] { return sort(x, 1).indices; });
  at_1_and_4_threads([&] { return topk(x, 5, 0).indices; });
  at_1_and_4_threads([&] { return cat({x, x, x}, 1); });
  at_1_and_4_threads([&] { return pad(x, {3, 3, 1, 0}); });
}

}  // namespace
}  // namespace kiln::kernels
