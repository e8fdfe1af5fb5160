// ONNX Einsum and Det for import_model (see import_ops_internal.h).
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// Einsum: each operand's repeated letters become a diagonal, then every operand is laid out over
// all letters (size-1 dims where it lacks one), multiplied with broadcasting, and summed over the
// letters the output drops. Differentiable; memory is the product of all letter sizes.
Outs einsum_op(const NodeContext& n, const Inputs& in) {
  std::string eq = n.s("equation", "");
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow), out;
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  KILN_CHECK(terms.size() == in.size(), "{}: equation has {} operands, node has {}", n.where(),
             terms.size(), in.size());
  // "..." stands for the leading dims not named by letters, broadcast across operands (aligned at
  // the right): it becomes E non-letter characters (E = the most such dims of any operand), of
  // which an operand with e such dims takes the last e; the output gets all E.
  std::string ell;
  if (eq.find("...") != std::string::npos) {
    int64_t E = 0;
    for (size_t k = 0; k < terms.size(); ++k)
      if (terms[k].find("...") != std::string::npos)
        E = std::max<int64_t>(E,
                              required(n, in, k).dim() - static_cast<int64_t>(terms[k].size() - 3));
    for (int64_t e = 0; e < E; ++e) ell += static_cast<char>(1 + e);
    for (size_t k = 0; k < terms.size(); ++k) {
      const size_t at = terms[k].find("...");
      if (at == std::string::npos) continue;
      const int64_t e = in[k].dim() - static_cast<int64_t>(terms[k].size() - 3);
      KILN_CHECK_SHAPE(e >= 0, "{}: term '{}' for a rank-{} operand", n.where(), terms[k],
                       in[k].dim());
      terms[k].replace(at, 3, ell.substr(ell.size() - static_cast<size_t>(e)));
    }
  }
  std::string letters;  // every letter, in order of first appearance
  for (const auto& t : terms)
    for (char c : t)
      if (letters.find(c) == std::string::npos) letters += c;
  if (arrow != std::string::npos) {
    out = eq.substr(arrow + 2);
    const size_t at = out.find("...");
    if (at != std::string::npos) out.replace(at, 3, ell);
  } else {  // implicit output: the ellipsis dims, then letters used once, alphabetical
    for (char c : letters) {
      if (ell.find(c) != std::string::npos) continue;
      int count = 0;
      for (const auto& t : terms) count += static_cast<int>(std::count(t.begin(), t.end(), c));
      if (count == 1) out += c;
    }
    std::sort(out.begin(), out.end());
    out = ell + out;
  }
  Tensor acc;
  for (size_t k = 0; k < terms.size(); ++k) {
    Tensor x = required(n, in, k);
    std::string t = terms[k];
    KILN_CHECK_SHAPE(static_cast<int64_t>(t.size()) == x.dim(),
                     "{}: term '{}' for a rank-{} operand", n.where(), t, x.dim());
    // Repeated letter: keep the diagonal (dims i and j merged, every (len+1)-th element).
    for (size_t i = 0; i < t.size(); ++i)
      for (size_t j = i + 1; j < t.size(); ++j) {
        if (t[i] != t[j]) continue;
        const int64_t len = x.size(static_cast<int64_t>(i));
        std::vector<int64_t> perm;
        for (int64_t d = 0; d < x.dim(); ++d)
          if (d != static_cast<int64_t>(j)) perm.push_back(d);
        perm.insert(perm.begin() + static_cast<int64_t>(i) + 1, static_cast<int64_t>(j));
        x = permute(x, perm);  // dims i, j adjacent
        Shape merged = x.shape();
        merged[i] = len * len;
        merged.erase(merged.begin() + static_cast<int64_t>(i) + 1);
        std::vector<int64_t> diag;
        for (int64_t q = 0; q < len; ++q) diag.push_back(q * (len + 1));
        x = index_select(reshape(x, merged), static_cast<int64_t>(i), index_tensor(diag));
        t.erase(j, 1);
        --j;
      }
    // Lay out over all letters.
    std::vector<int64_t> perm;
    Shape full;
    for (char c : letters) {
      const size_t pos = t.find(c);
      if (pos != std::string::npos) perm.push_back(static_cast<int64_t>(pos));
    }
    x = permute(x, perm);
    size_t q = 0;
    for (char c : letters)
      full.push_back(t.find(c) != std::string::npos ? x.size(static_cast<int64_t>(q++)) : 1);
    x = reshape(x, full);
    acc = k == 0 ? x : mul(acc, x);
  }
  Dims drop;
  for (size_t d = 0; d < letters.size(); ++d)
    if (out.find(letters[d]) == std::string::npos) drop.push_back(static_cast<int64_t>(d));
  if (!drop.empty()) acc = sum(acc, drop);
  std::string kept;
  for (char c : letters)
    if (out.find(c) != std::string::npos) kept += c;
  std::vector<int64_t> perm;
  for (char c : out) perm.push_back(static_cast<int64_t>(kept.find(c)));
  return {perm.empty() ? acc : contiguous(permute(acc, perm))};
}

// Det: X (*, M, M) -> (*), by LU decomposition with partial pivoting in float64 (the product of
// U's diagonal, negated per row swap). No gradient (Kiln has no autograd determinant).
Outs det_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_TYPE(is_floating(x.dtype()), "{}: X must be float, got {}", n.where(), x.dtype());
  KILN_CHECK_SHAPE(x.dim() >= 2 && x.size(-1) == x.size(-2), "{}: X [{}] must be (*, M, M)",
                   n.where(), fmt::join(x.shape(), ", "));
  const int64_t M = x.size(-1), batch = M == 0 ? 0 : x.numel() / (M * M);
  std::vector<double> v = x.to_vector<double>(), dets;
  for (int64_t b = 0; b < batch; ++b) {
    double* a = v.data() + b * M * M;
    double det = 1.0;
    for (int64_t c = 0; c < M && det != 0.0; ++c) {
      int64_t piv = c;
      for (int64_t r = c + 1; r < M; ++r)
        if (std::abs(a[r * M + c]) > std::abs(a[piv * M + c])) piv = r;
      if (a[piv * M + c] == 0.0) {
        det = 0.0;
        break;
      }
      if (piv != c) {
        std::swap_ranges(a + piv * M, a + (piv + 1) * M, a + c * M);
        det = -det;
      }
      det *= a[c * M + c];
      for (int64_t r = c + 1; r < M; ++r) {
        const double f = a[r * M + c] / a[c * M + c];
        for (int64_t k = c; k < M; ++k) a[r * M + k] -= f * a[c * M + k];
      }
    }
    dets.push_back(det);
  }
  Array out(Shape(x.shape().begin(), x.shape().end() - 2), kFloat64);
  std::copy(dets.begin(), dets.end(), out.data<double>());
  return {nondiff(n, in, out.to(x.dtype()))};
}

}  // namespace

void register_einsum_ops(OpTable& t) {
  t["Einsum"] = einsum_op;
  t["Det"] = det_op;
}

}  // namespace kiln::onnx::detail
