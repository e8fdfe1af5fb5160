#include "kiln/data/normalize.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>

#include "kiln/data/csv.h"
#include "kiln/tensor/error.h"

namespace kiln::data {

namespace {

constexpr std::string_view kMagic = "kiln-normalizer 1";

std::string_view kind_name(NormalizerKind kind) {
  return kind == NormalizerKind::MinMax ? "min_max" : "mean_variance";
}

// Finite values only: NaN marks a missing value and an infinity would swamp every statistic.
template <typename F>
size_t for_each_finite(std::span<const float> x, F&& f) {
  size_t n = 0;
  for (float v : x) {
    if (std::isfinite(v)) {
      f(static_cast<double>(v));
      ++n;
    }
  }
  return n;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '\t') {
      parts.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

bool parse_double(std::string_view s, double& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

AffineNormalization fit_min_max(std::span<const float> x, bool fix_zero) {
  double lo = INFINITY, hi = -INFINITY;
  const size_t n = for_each_finite(x, [&](double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  });
  KILN_CHECK(n > 0, "fit_min_max: no finite values among {} (NaN and inf are skipped)", x.size());
  AffineNormalization m{
      .kind = NormalizerKind::MinMax, .fix_zero = fix_zero, .offset = 0.0, .scale = 0.0};
  if (!(hi > lo)) return m;  // constant: maps to 0
  if (fix_zero) {
    m.scale = 1.0 / std::max(std::abs(lo), std::abs(hi));
  } else {
    m.scale = 1.0 / (hi - lo);
    m.offset = lo;
  }
  return m;
}

AffineNormalization fit_mean_variance(std::span<const float> x, bool fix_zero) {
  double sum = 0.0;
  const size_t n = for_each_finite(x, [&](double v) { sum += v; });
  KILN_CHECK(n > 0, "fit_mean_variance: no finite values among {} (NaN and inf are skipped)",
             x.size());
  const double mean = sum / static_cast<double>(n);
  double m2 = 0.0;  // sum of squared deviations, second pass for accuracy
  for_each_finite(x, [&](double v) { m2 += (v - mean) * (v - mean); });
  const double var = m2 / static_cast<double>(n);
  AffineNormalization m{
      .kind = NormalizerKind::MeanVariance, .fix_zero = fix_zero, .offset = 0.0, .scale = 0.0};
  if (var == 0.0) return m;  // constant: maps to 0
  if (fix_zero) {
    m.scale = 1.0 / std::sqrt(var + mean * mean);
  } else {
    m.scale = 1.0 / std::sqrt(var);
    m.offset = mean;
  }
  return m;
}

Normalizer Normalizer::min_max(const Table& table, const std::vector<std::string>& columns,
                               bool fix_zero) {
  Normalizer n;
  for (const std::string& c : columns) n.set(c, fit_min_max(table[c].floats(), fix_zero));
  return n;
}

Normalizer Normalizer::mean_variance(const Table& table, const std::vector<std::string>& columns,
                                     bool fix_zero) {
  Normalizer n;
  for (const std::string& c : columns) n.set(c, fit_mean_variance(table[c].floats(), fix_zero));
  return n;
}

void Normalizer::set(std::string column, AffineNormalization map) {
  for (auto& [name, m] : maps_) {
    if (name == column) {
      m = map;
      return;
    }
  }
  maps_.emplace_back(std::move(column), map);
}

bool Normalizer::contains(std::string_view column) const {
  for (const auto& entry : maps_) {
    if (entry.first == column) return true;
  }
  return false;
}

const AffineNormalization& Normalizer::params(std::string_view column) const {
  for (const auto& [name, m] : maps_) {
    if (name == column) return m;
  }
  throw Error(fmt::format("Normalizer: no map for column \"{}\" (fitted columns: {})", column,
                          fmt::join(column_names(), ", ")));
}

std::vector<std::string> Normalizer::column_names() const {
  std::vector<std::string> names;
  for (const auto& entry : maps_) names.push_back(entry.first);
  return names;
}

void Normalizer::transform_in_place(Table& table) const {
  for (const auto& entry : maps_) (void)table[entry.first].floats();  // all present before any edit
  for (const auto& [name, m] : maps_) {
    for (float& v : table[name].floats()) v = m.apply(v);
  }
}

Table Normalizer::transform(const Table& table) const {
  Table out = table;
  transform_in_place(out);
  return out;
}

void Normalizer::transform(std::string_view column, std::span<float> values) const {
  const AffineNormalization& m = params(column);
  for (float& v : values) v = m.apply(v);
}

void Normalizer::inverse_transform(std::string_view column, std::span<float> values) const {
  const AffineNormalization& m = params(column);
  for (float& v : values) v = m.invert(v);
}

void Normalizer::save(const std::filesystem::path& path) const {
  detail::AtomicFile file(path, "Normalizer::save");
  file.write(fmt::format("{}\n{}\n", kMagic, maps_.size()));
  for (const auto& [name, m] : maps_) {
    file.write(fmt::format("{}\t{}\t{}\t{}\t{}\n", detail::escape_text(name), kind_name(m.kind),
                           m.fix_zero ? 1 : 0, m.offset, m.scale));
  }
  file.commit();
}

Normalizer Normalizer::load(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "Normalizer::load: cannot open {}", file);
  std::string line;
  std::getline(in, line);
  KILN_CHECK_AS(IOError, line == kMagic,
                "Normalizer::load: {} line 1: expected \"{}\" (not a saved normalizer)", file,
                kMagic);
  std::getline(in, line);
  size_t count = 0;
  const auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), count);
  KILN_CHECK_AS(IOError, ec == std::errc() && ptr == line.data() + line.size(),
                "Normalizer::load: {} line 2: expected the column count, found \"{}\"", file, line);
  Normalizer n;
  for (size_t i = 0; i < count; ++i) {
    const size_t at = i + 3;
    KILN_CHECK_AS(IOError, static_cast<bool>(std::getline(in, line)),
                  "Normalizer::load: {} is truncated: {} columns announced, {} found", file, count,
                  i);
    const auto parts = split_tabs(line);
    AffineNormalization m;
    const bool ok = parts.size() == 5 && (parts[1] == "min_max" || parts[1] == "mean_variance") &&
                    (parts[2] == "0" || parts[2] == "1") && parse_double(parts[3], m.offset) &&
                    parse_double(parts[4], m.scale);
    KILN_CHECK_AS(IOError, ok,
                  "Normalizer::load: {} line {}: expected name, min_max|mean_variance, 0|1, "
                  "offset, scale separated by tabs, found \"{}\"",
                  file, at, detail::escape_text(line));
    m.kind = parts[1] == "min_max" ? NormalizerKind::MinMax : NormalizerKind::MeanVariance;
    m.fix_zero = parts[2] == "1";
    n.set(detail::unescape_text(parts[0], fmt::format("Normalizer::load: {} line {}", file, at)),
          m);
  }
  return n;
}

}  // namespace kiln::data
