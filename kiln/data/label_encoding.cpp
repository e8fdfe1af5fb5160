#include "kiln/data/label_encoding.h"

#include <algorithm>
#include <charconv>
#include <fstream>

#include "kiln/data/csv.h"
#include "kiln/tensor/error.h"

namespace kiln::data {

namespace {

constexpr std::string_view kMagic = "kiln-label-encoder 1";
constexpr size_t kMaxListed = 10;  // labels an "unseen label" error lists

}  // namespace

LabelEncoder::LabelEncoder(std::vector<std::string> values) : values_(std::move(values)) {
  keys_.reserve(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    auto [it, inserted] = keys_.emplace(values_[i], static_cast<int64_t>(i));
    KILN_CHECK(inserted,
               "LabelEncoder: value \"{}\" appears at keys {} and {} (each value must be distinct)",
               values_[i], it->second, i);
  }
}

LabelEncoder LabelEncoder::fit(std::span<const std::string> labels, KeyOrdering ordering) {
  std::vector<std::string> distinct;
  std::unordered_map<std::string_view, bool> seen;
  for (const std::string& label : labels) {
    if (seen.emplace(label, true).second) distinct.push_back(label);
  }
  if (ordering == KeyOrdering::ByValue) std::sort(distinct.begin(), distinct.end());
  return LabelEncoder(std::move(distinct));
}

LabelEncoder LabelEncoder::from_key_column(const Column& column) {
  return LabelEncoder(column.key_values());
}

std::optional<int64_t> LabelEncoder::find(std::string_view label) const {
  auto it = keys_.find(label);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

int64_t LabelEncoder::key(std::string_view label) const {
  if (auto k = find(label)) return *k;
  throw_unseen(label, "");
}

void LabelEncoder::throw_unseen(std::string_view label, std::string_view where) const {
  std::string known;
  for (size_t i = 0; i < std::min(values_.size(), kMaxListed); ++i) {
    known += fmt::format("{}\"{}\"", i ? ", " : "", values_[i]);
  }
  if (values_.size() > kMaxListed) known += ", ...";
  throw Error(
      fmt::format("LabelEncoder: unseen label \"{}\"{} (the encoder knows {} labels: {}; "
                  "fit it on data that includes every label)",
                  label, where, values_.size(), known));
}

const std::string& LabelEncoder::value(int64_t key) const {
  KILN_CHECK(
      key >= 0 && static_cast<size_t>(key) < values_.size(),
      "LabelEncoder: key {} is out of range (the encoder has {} labels, keys lie in [0, {}))", key,
      values_.size(), values_.size());
  return values_[static_cast<size_t>(key)];
}

std::vector<int64_t> LabelEncoder::transform(std::span<const std::string> labels) const {
  std::vector<int64_t> keys(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    auto k = find(labels[i]);
    if (!k) throw_unseen(labels[i], fmt::format(" at row {}", i));
    keys[i] = *k;
  }
  return keys;
}

Column LabelEncoder::transform(const Column& strings) const {
  return Column::from_keys(strings.name(), transform(strings.strings()), values_);
}

std::vector<std::string> LabelEncoder::inverse_transform(std::span<const int64_t> keys) const {
  std::vector<std::string> labels;
  labels.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    KILN_CHECK(keys[i] >= 0 && static_cast<size_t>(keys[i]) < values_.size(),
               "LabelEncoder::inverse_transform: row {} has key {} (the encoder has {} labels, "
               "keys lie in [0, {}))",
               i, keys[i], values_.size(), values_.size());
    labels.push_back(values_[static_cast<size_t>(keys[i])]);
  }
  return labels;
}

void LabelEncoder::save(const std::filesystem::path& path) const {
  detail::AtomicFile file(path, "LabelEncoder::save");
  file.write(fmt::format("{}\n{}\n", kMagic, values_.size()));
  for (const std::string& v : values_) {
    file.write(detail::escape_text(v));
    file.write("\n");
  }
  file.commit();
}

LabelEncoder LabelEncoder::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "LabelEncoder::load: cannot open {}", path.string());
  std::string line;
  std::getline(in, line);
  KILN_CHECK_AS(IOError, line == kMagic,
                "LabelEncoder::load: {} line 1: expected \"{}\" (not a saved label encoder)",
                path.string(), kMagic);
  std::getline(in, line);
  size_t count = 0;
  const auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), count);
  KILN_CHECK_AS(IOError, ec == std::errc() && ptr == line.data() + line.size(),
                "LabelEncoder::load: {} line 2: expected the label count, found \"{}\"",
                path.string(), line);
  std::vector<std::string> values;
  for (size_t i = 0; i < count; ++i) {
    KILN_CHECK_AS(IOError, static_cast<bool>(std::getline(in, line)),
                  "LabelEncoder::load: {} is truncated: {} labels announced, {} found",
                  path.string(), count, i);
    values.push_back(detail::unescape_text(
        line, fmt::format("LabelEncoder::load: {} line {}", path.string(), i + 3)));
  }
  try {
    return LabelEncoder(std::move(values));
  } catch (const Error& e) {
    throw IOError(fmt::format("LabelEncoder::load: {}: {}", path.string(), e.what()));
  }
}

}  // namespace kiln::data
