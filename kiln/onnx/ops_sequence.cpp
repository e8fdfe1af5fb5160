// ONNX sequences (seq(tensor)) and string tensors: SequenceEmpty/Construct/Insert/At/Erase/Length,
// SplitToSequence, ConcatFromSequence, StringNormalizer, and Identity over any value. A sequence is
// a std::vector<Tensor> in the value table; its elements stay autograd tensors, so SequenceAt,
// SplitToSequence and ConcatFromSequence pass gradients through (narrow / cat / stack).
// Positions follow the spec: SequenceAt/Erase accept [-n, n-1], SequenceInsert [-n, n]; negative
// positions count from the back.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {

namespace {

using Seq = std::vector<Tensor>;

const Seq& sequence_in(const NodeContext& n, const Values& in, size_t k) {
  KILN_CHECK(k < in.size(), "{}: input {} is required but absent", n.where(), k);
  const auto* s = std::get_if<Seq>(&in[k]);
  KILN_CHECK_TYPE(s != nullptr, "{}: input {} must be a sequence, got {}", n.where(), k,
                  kind_name(in[k]));
  return *s;
}

const Tensor& tensor_in(const NodeContext& n, const Values& in, size_t k) {
  KILN_CHECK(k < in.size(), "{}: input {} is required but absent", n.where(), k);
  const auto* t = std::get_if<Tensor>(&in[k]);
  KILN_CHECK_TYPE(t != nullptr, "{}: input {} must be a tensor, got {}", n.where(), k,
                  kind_name(in[k]));
  KILN_CHECK(t->defined(), "{}: input {} is required but absent", n.where(), k);
  return *t;
}

// An optional tensor input: undefined when absent.
Tensor optional_in(const NodeContext& n, const Values& in, size_t k) {
  if (k >= in.size()) return Tensor();
  const auto* t = std::get_if<Tensor>(&in[k]);
  KILN_CHECK_TYPE(t != nullptr, "{}: input {} must be a tensor", n.where(), k);
  return *t;
}

// A position input normalised against `n_elems`; `insert` allows n (append).
size_t position(const NodeContext& n, const Tensor& p, int64_t n_elems, bool insert) {
  const std::vector<int64_t> v = int_values(n, p, "position");
  KILN_CHECK_SHAPE(v.size() == 1, "{}: position must hold one value, got {}", n.where(), v.size());
  const int64_t hi = insert ? n_elems : n_elems - 1;
  KILN_CHECK_SHAPE(v[0] >= -n_elems && v[0] <= hi,
                   "{}: position {} is out of range for a sequence of {} tensor(s) (must be in "
                   "[{}, {}])",
                   n.where(), v[0], n_elems, -n_elems, hi);
  return static_cast<size_t>(v[0] < 0 ? v[0] + n_elems : v[0]);
}

void check_same_dtype(const NodeContext& n, const Seq& s, const Tensor& t) {
  KILN_CHECK_TYPE(s.empty() || s.front().dtype() == t.dtype(),
                  "{}: a sequence of {} cannot take a {} tensor (all elements share one type)",
                  n.where(), s.empty() ? t.dtype() : s.front().dtype(), t.dtype());
}

Values sequence_empty_op(const NodeContext&, const Values&) {
  return {Seq{}};
}

Values sequence_construct_op(const NodeContext& n, const Values& in) {
  Seq s;
  for (size_t k = 0; k < in.size(); ++k) {
    const Tensor& t = tensor_in(n, in, k);
    check_same_dtype(n, s, t);
    s.push_back(t);
  }
  return {std::move(s)};
}

Values sequence_insert_op(const NodeContext& n, const Values& in) {
  Seq s = sequence_in(n, in, 0);
  const Tensor& t = tensor_in(n, in, 1);
  check_same_dtype(n, s, t);
  const Tensor p = optional_in(n, in, 2);
  const int64_t len = static_cast<int64_t>(s.size());
  const size_t at = p.defined() ? position(n, p, len, /*insert=*/true) : s.size();
  s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), t);
  return {std::move(s)};
}

Values sequence_at_op(const NodeContext& n, const Values& in) {
  const Seq& s = sequence_in(n, in, 0);
  const size_t at = position(n, tensor_in(n, in, 1), static_cast<int64_t>(s.size()), false);
  return {s[at]};
}

Values sequence_erase_op(const NodeContext& n, const Values& in) {
  Seq s = sequence_in(n, in, 0);
  const Tensor p = optional_in(n, in, 1);
  KILN_CHECK_SHAPE(!s.empty(), "{}: cannot erase from an empty sequence", n.where());
  const size_t at =
      p.defined() ? position(n, p, static_cast<int64_t>(s.size()), false) : s.size() - 1;
  s.erase(s.begin() + static_cast<std::ptrdiff_t>(at));
  return {std::move(s)};
}

Values sequence_length_op(const NodeContext& n, const Values& in) {
  const Seq& s = sequence_in(n, in, 0);
  return {int64_tensor({static_cast<int64_t>(s.size())}, {})};
}

// SplitToSequence(input, split?): without `split`, pieces of length 1 along `axis` (squeezed when
// keepdims = 0); a scalar split gives pieces of that length (the last may be shorter); a 1-D split
// gives the listed lengths, which must add up to the axis length.
Values split_to_sequence_op(const NodeContext& n, const Values& in) {
  const Tensor& x = tensor_in(n, in, 0);
  const Tensor split = optional_in(n, in, 1);
  const int64_t a = axis(n, n.i("axis", 0), x.dim());
  const int64_t len = x.size(a);
  std::vector<int64_t> sizes;
  bool squeeze_axis = false;
  if (!split.defined()) {
    sizes.assign(static_cast<size_t>(len), 1);
    squeeze_axis = n.i("keepdims", 1) == 0;
  } else if (split.dim() == 0) {
    const int64_t each = int_values(n, split, "split")[0];
    KILN_CHECK_SHAPE(each > 0, "{}: split length must be positive, got {}", n.where(), each);
    for (int64_t left = len; left > 0; left -= each) sizes.push_back(std::min(each, left));
  } else {
    sizes = int_values(n, split, "split");
    int64_t total = 0;
    for (int64_t s : sizes) {
      KILN_CHECK_SHAPE(s >= 0, "{}: split lengths must be >= 0, got [{}]", n.where(),
                       fmt::join(sizes, ", "));
      total += s;
    }
    KILN_CHECK_SHAPE(total == len, "{}: split lengths [{}] do not add up to {} (axis {})",
                     n.where(), fmt::join(sizes, ", "), len, a);
  }
  Seq out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    Tensor piece = narrow(x, a, start, s);
    out.push_back(squeeze_axis ? squeeze(piece, a) : piece);
    start += s;
  }
  return {std::move(out)};
}

// ConcatFromSequence: cat along `axis`, or stack along a new `axis` when new_axis = 1 (then axis
// may be in [-r-1, r]).
Values concat_from_sequence_op(const NodeContext& n, const Values& in) {
  const Seq& s = sequence_in(n, in, 0);
  KILN_CHECK(n.has("axis"), "{}: attribute 'axis' is required", n.where());
  KILN_CHECK_SHAPE(!s.empty(), "{}: the sequence is empty (nothing to concatenate)", n.where());
  const bool new_axis = n.i("new_axis", 0) != 0;
  const int64_t r = s.front().dim();
  if (new_axis) return {stack(s, axis(n, n.i("axis", 0), r + 1))};
  return {cat(s, axis(n, n.i("axis", 0), r))};
}

// Optional(input?): the input, or an empty optional when it is omitted (the `type` attribute
// only declares what the empty one would hold).
Values optional_op(const NodeContext&, const Values& in) {
  if (in.empty()) return {EmptyOptional{}};
  if (const auto* t = std::get_if<Tensor>(&in[0]); t != nullptr && !t->defined())
    return {EmptyOptional{}};
  return {in[0]};
}

bool has_element(const Values& in) {
  if (in.empty() || std::holds_alternative<EmptyOptional>(in[0])) return false;
  const auto* t = std::get_if<Tensor>(&in[0]);
  return t == nullptr || t->defined();
}

// OptionalHasElement: a bool scalar, false for an empty optional or an omitted input.
Values optional_has_element_op(const NodeContext&, const Values& in) {
  Array out(Shape{}, kBool);
  out.data<bool>()[0] = has_element(in);
  return {Tensor(std::move(out))};
}

// OptionalGetElement: the value an optional holds (a plain tensor or sequence passes through).
Values optional_get_element_op(const NodeContext& n, const Values& in) {
  KILN_CHECK(has_element(in), "{}: the optional is empty", n.where());
  return {in[0]};
}

Values identity_value_op(const NodeContext& n, const Values& in) {
  KILN_CHECK(!in.empty(), "{}: input 0 is required but absent", n.where());
  if (const auto* t = std::get_if<Tensor>(&in[0]))
    KILN_CHECK(t->defined(), "{}: input 0 is required but absent", n.where());
  return {in[0]};
}

// ---- strings ----

constexpr int64_t kOnnxString = 8;  // TensorProto::STRING

// A number as Cast writes it: the shortest digits that read back to the same value (what NumPy's
// str() gives, and ONNX's reference uses), and NaN, INF, -INF.
template <typename T>
std::string number_string(T v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "INF" : "-INF";
  return fmt::format("{}", v);
}

StringTensor format_numbers(const Tensor& x) {
  StringTensor out{x.shape(), {}};
  if (x.dtype() == kFloat32) {
    for (float v : x.to_vector<float>()) out.data.push_back(number_string(v));
  } else if (is_floating(x.dtype())) {
    for (double v : x.to_vector<double>()) out.data.push_back(number_string(v));
  } else {
    for (int64_t v : x.to_vector<int64_t>()) out.data.push_back(fmt::format("{}", v));
  }
  return out;
}

// Strings -> float64 (strtod: decimals, exponents, NaN, INF, +INF, -INF in any case); the whole
// string must be a number.
Tensor parse_numbers(const NodeContext& n, const StringTensor& x) {
  KILN_CHECK_SHAPE(string_count_matches(x), "{}: {} strings do not fill shape [{}]", n.where(),
                   x.data.size(), fmt::join(x.shape, ", "));
  Array a(x.shape, kFloat64);
  double* out = a.data<double>();
  for (size_t k = 0; k < x.data.size(); ++k) {
    const char* begin = x.data[k].c_str();
    char* end = nullptr;
    out[k] = std::strtod(begin, &end);
    KILN_CHECK(!x.data[k].empty() && end == begin + x.data[k].size(),
               "{}: element {} ('{}') is not a number", n.where(), k, x.data[k]);
  }
  return Tensor(std::move(a));
}

// Cast and CastLike over strings: to a string tensor (to = STRING, or CastLike with a string
// `like`) formats numbers; a string input is parsed to float64 and then cast as the tensor op
// casts (so float16 targets round as there). Tensor-to-tensor casts are the tensor op's.
Values cast_value_op(const NodeContext& n, const Values& in) {
  KILN_CHECK(!in.empty(), "{}: input 0 is required but absent", n.where());
  const bool like = n.op_type == "CastLike";
  KILN_CHECK(!like || in.size() > 1, "{}: input 1 is required but absent", n.where());
  const bool to_string =
      like ? std::holds_alternative<StringTensor>(in[1]) : n.i("to", 0) == kOnnxString;
  const OpFn tensor_cast = op_table().at(n.op_type).fn;
  const auto* strings = std::get_if<StringTensor>(&in[0]);
  if (to_string) {
    if (strings != nullptr) return {*strings};
    return {format_numbers(tensor_in(n, in, 0))};
  }
  Inputs tensors{strings != nullptr ? parse_numbers(n, *strings) : tensor_in(n, in, 0)};
  if (like) tensors.push_back(tensor_in(n, in, 1));
  std::vector<Tensor> out = tensor_cast(n, tensors);
  return Values(std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
}

std::string change_case(std::string s, const std::string& action) {
  // Bytes outside ASCII are left as they are (UTF-8 multi-byte sequences stay intact).
  for (char& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) continue;
    if (action == "LOWER") c = static_cast<char>(std::tolower(u));
    if (action == "UPPER") c = static_cast<char>(std::toupper(u));
  }
  return s;
}

// StringNormalizer: X is [C] or [1, C]. Drops the stopwords (compared case-insensitively unless
// is_case_sensitive = 1), then applies case_change_action (LOWER, UPPER or NONE). When every
// string is dropped the output is one empty string: [1], or [1, 1] for a 2-D input.
Values string_normalizer_op(const NodeContext& n, const Values& in) {
  KILN_CHECK(!in.empty(), "{}: input 0 is required but absent", n.where());
  const auto* x = std::get_if<StringTensor>(&in[0]);
  KILN_CHECK_TYPE(x != nullptr, "{}: input 0 must be a string tensor", n.where());
  const bool two_d = x->shape.size() == 2;
  KILN_CHECK_SHAPE(x->shape.size() == 1 || (two_d && x->shape[0] == 1),
                   "{}: input must be [C] or [1, C], got [{}]", n.where(),
                   fmt::join(x->shape, ", "));
  const std::string action = n.s("case_change_action", "NONE");
  KILN_CHECK(action == "NONE" || action == "LOWER" || action == "UPPER",
             "{}: case_change_action must be NONE, LOWER or UPPER, got '{}'", n.where(), action);
  const std::string locale = n.s("locale", "");
  KILN_CHECK(locale.empty() || locale == "en_US" || locale == "C",
             "{}: locale '{}' is not supported (only en_US)", n.where(), locale);
  const bool sensitive = n.i("is_case_sensitive", 0) != 0;
  std::set<std::string> stop;
  auto it = n.attrs.find("stopwords");
  if (it != n.attrs.end())
    for (const auto& w : it->second.strings) stop.insert(sensitive ? w : change_case(w, "LOWER"));
  StringTensor y;
  for (const auto& s : x->data)
    if (!stop.count(sensitive ? s : change_case(s, "LOWER")))
      y.data.push_back(change_case(s, action));
  if (y.data.empty()) y.data.emplace_back();
  const auto c = static_cast<int64_t>(y.data.size());
  y.shape = two_d ? Shape{1, c} : Shape{c};
  return {std::move(y)};
}

}  // namespace

const char* kind_name(const Value& v) {
  if (std::holds_alternative<EmptyOptional>(v)) return "an empty optional";
  if (std::holds_alternative<std::vector<Tensor>>(v)) return "a sequence";
  if (std::holds_alternative<StringTensor>(v)) return "a string tensor";
  return "a tensor";
}

bool string_count_matches(const StringTensor& s) {
  int64_t n = 1;
  for (int64_t d : s.shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return false;
  return n == static_cast<int64_t>(s.data.size());
}

void register_sequence_ops(OpTable& t) {
  t["SequenceEmpty"] = sequence_empty_op;
  t["SequenceConstruct"] = sequence_construct_op;
  t["SequenceInsert"] = sequence_insert_op;
  t["SequenceAt"] = sequence_at_op;
  t["SequenceErase"] = sequence_erase_op;
  t["SequenceLength"] = sequence_length_op;
  t["SplitToSequence"] = split_to_sequence_op;
  t["ConcatFromSequence"] = concat_from_sequence_op;
  t["StringNormalizer"] = string_normalizer_op;
  t["Optional"] = optional_op;
  t["OptionalHasElement"] = optional_has_element_op;
  t["OptionalGetElement"] = optional_get_element_op;
  // Any value for these (the tensor forms registered before stay as fn, for constant folding).
  t["Identity"].value_fn = identity_value_op;
  t["Cast"].value_fn = cast_value_op;
  t["CastLike"].value_fn = cast_value_op;
}

}  // namespace kiln::onnx::detail
