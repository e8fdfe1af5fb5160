// ONNX TfIdfVectorizer for import_model (see import_ops_internal.h), over integer tokens (Kiln has
// no string tensors, so pool_strings models are refused). The output is a constant (no gradient).
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// TfIdfVectorizer(X (C) or (B, C) int tokens) -> (O) or (B, O) float32, O = max(ngram_indexes) + 1.
// The pool lists the n-grams by length: ngram_counts[k] is where the (k+1)-grams start in
// pool_int64s; the g-th n-gram of the pool (counting all lengths) lands in output column
// ngram_indexes[g]. An n-gram of X is n tokens `skip + 1` apart, skip = 0..max_skip_count; lengths
// min_gram_length..max_gram_length count, and 1-grams are counted once, not once per skip.
// mode TF: counts; IDF: weights[col] (or 1) where the count is > 0; TFIDF: weights[col]·count.
Outs tfidf_vectorizer_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_TYPE(!is_floating(x.dtype()) && !n.has("pool_strings"),
                  "{}: Kiln supports integer tokens only (pool_int64s), got {}{}", n.where(),
                  x.dtype(), n.has("pool_strings") ? " with pool_strings" : "");
  KILN_CHECK_SHAPE(x.dim() == 1 || x.dim() == 2, "{}: X [{}] must be (C) or (B, C)", n.where(),
                   fmt::join(x.shape(), ", "));
  const int64_t min_n = n.i("min_gram_length", 1), max_n = n.i("max_gram_length", 1),
                max_skip = n.i("max_skip_count", 0);
  const std::string mode = n.s("mode", "TF");
  KILN_CHECK(mode == "TF" || mode == "IDF" || mode == "TFIDF",
             "{}: mode '{}' is not TF, IDF or TFIDF", n.where(), mode);
  const std::vector<int64_t> counts = n.ints("ngram_counts"), cols = n.ints("ngram_indexes"),
                             pool = n.ints("pool_int64s");
  const std::vector<double> weights = n.floats("weights");
  KILN_CHECK(!cols.empty() && min_n >= 1 && max_n >= min_n && max_skip >= 0,
             "{}: needs ngram_indexes and 1 <= min_gram_length <= max_gram_length", n.where());
  const int64_t O = *std::max_element(cols.begin(), cols.end()) + 1;
  KILN_CHECK(weights.empty() || static_cast<int64_t>(weights.size()) >= O,
             "{}: {} weights for {} output columns", n.where(), weights.size(), O);

  // The pool's n-grams of the counted lengths -> their output column.
  std::map<std::vector<int64_t>, int64_t> grams;
  int64_t g = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    const auto len = static_cast<int64_t>(k + 1);
    const int64_t begin = counts[k],
                  end = k + 1 < counts.size() ? counts[k + 1] : static_cast<int64_t>(pool.size());
    KILN_CHECK(begin >= 0 && begin <= end && end <= static_cast<int64_t>(pool.size()),
               "{}: ngram_counts [{}] do not fit a pool of {}", n.where(), fmt::join(counts, ", "),
               pool.size());
    for (int64_t p = begin; p + len <= end; p += len, ++g) {
      if (len < min_n || len > max_n) continue;
      KILN_CHECK(g < static_cast<int64_t>(cols.size()) && cols[static_cast<size_t>(g)] >= 0,
                 "{}: n-gram {} has no output column in ngram_indexes", n.where(), g);
      grams[std::vector<int64_t>(pool.begin() + p, pool.begin() + p + len)] =
          cols[static_cast<size_t>(g)];
    }
  }

  const int64_t rows = x.dim() == 2 ? x.size(0) : 1, C = x.size(-1);
  const std::vector<int64_t> tokens = x.to_vector<int64_t>();
  std::vector<double> freq(static_cast<size_t>(rows * O), 0.0);
  std::vector<int64_t> gram;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t* t = tokens.data() + r * C;
    for (int64_t skip = 0; skip <= max_skip; ++skip) {
      const int64_t step = skip + 1, shortest = skip > 0 ? std::max<int64_t>(min_n, 2) : min_n;
      if (shortest > max_n) break;
      for (int64_t start = 0; start < C; ++start)
        for (int64_t len = shortest; len <= max_n && start + (len - 1) * step < C; ++len) {
          gram.clear();
          for (int64_t i = 0; i < len; ++i) gram.push_back(t[start + i * step]);
          const auto it = grams.find(gram);
          if (it != grams.end()) freq[static_cast<size_t>(r * O + it->second)] += 1.0;
        }
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < O; ++c) {
      double& f = freq[static_cast<size_t>(r * O + c)];
      const double w = weights.empty() ? 1.0 : weights[static_cast<size_t>(c)];
      if (mode == "IDF") f = f > 0 ? w : 0.0;
      if (mode == "TFIDF") f *= w;
    }
  Array out(x.dim() == 2 ? Shape{rows, O} : Shape{O}, kFloat64);
  std::copy(freq.begin(), freq.end(), out.data<double>());
  return {nondiff(n, in, out.to(kFloat32))};
}

}  // namespace

void register_text_ops(OpTable& t) {
  t["TfIdfVectorizer"] = tfidf_vectorizer_op;
}

}  // namespace kiln::onnx::detail
