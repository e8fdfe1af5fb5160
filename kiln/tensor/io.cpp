#include "kiln/tensor/io.h"

#include <fmt/format.h>

#include <vector>

namespace kiln {
namespace {

void format_rec(const Array& a, std::string& out, int64_t d, std::vector<int64_t>& idx,
                int precision, bool summarize, int indent) {
  out += '[';
  int64_t n = a.shape()[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 6 && i == 3) {
      out += "...";
      i = n - 3;
      out += d + 1 == a.dim() ? ", " : ",\n" + std::string(indent + 1, ' ');
    }
    idx[d] = i;
    if (d + 1 == a.dim()) {
      double v = a.at(idx);
      if (is_floating(a.dtype()))
        out += fmt::format("{:.{}f}", v, precision);
      else if (a.dtype() == kBool)
        out += v != 0 ? "true" : "false";
      else
        out += fmt::format("{}", static_cast<int64_t>(v));
    } else {
      format_rec(a, out, d + 1, idx, precision, summarize, indent + 1);
    }
    if (i + 1 < n) out += d + 1 == a.dim() ? ", " : ",\n" + std::string(indent + 1, ' ');
  }
  out += ']';
}

}  // namespace

std::string format_array(const Array& a, int precision) {
  if (!a.defined()) return "undefined";
  if (a.dim() == 0) {
    std::vector<int64_t> idx;
    double v = a.at(idx);
    return is_floating(a.dtype()) ? fmt::format("{:.{}f}", v, precision)
                                  : fmt::format("{}", static_cast<int64_t>(v));
  }
  if (a.numel() == 0) return "[]";
  std::string out;
  std::vector<int64_t> idx(a.dim(), 0);
  format_rec(a, out, 0, idx, precision, a.numel() > 1000, 0);
  return out;
}

}  // namespace kiln
