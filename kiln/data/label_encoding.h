#pragma once
// String labels <-> dense integer keys, as ML.NET's MapValueToKey / MapKeyToValue: a classifier
// trains on keys 0..K-1 and its predictions map back to the original label strings.
//
//   LabelEncoder enc = LabelEncoder::fit(table["Species"].strings());   // "setosa" -> 0, ...
//   std::vector<int64_t> y = enc.transform(table["Species"].strings()); // (N) in [0, K)
//   std::vector<std::string> names = enc.inverse_transform(predicted);  // (N) label strings
//   enc.save("model/labels.txt");                                       // beside the model
//   LabelEncoder same = LabelEncoder::load("model/labels.txt");
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/data/columns.h"

namespace kiln::data {

/// How fit numbers the distinct labels (ML.NET's KeyOrdinality).
enum class KeyOrdering {
  ByOccurrence,  ///< In order of first appearance (ML.NET's default).
  ByValue,       ///< Sorted by byte-wise string comparison.
};

/// A fitted bijection between K distinct label strings and keys 0..K-1.
class LabelEncoder {
 public:
  LabelEncoder() = default;
  /// Key i stands for values[i]. Throws kiln::Error when a value repeats.
  explicit LabelEncoder(std::vector<std::string> values);

  /// Learns the distinct labels of `labels`.
  static LabelEncoder fit(std::span<const std::string> labels,
                          KeyOrdering ordering = KeyOrdering::ByOccurrence);
  /// The key table of a Key column (e.g. one load_csv produced), to map predicted keys back.
  static LabelEncoder from_key_column(const Column& column);

  /// Number of distinct labels K.
  size_t size() const { return values_.size(); }
  /// Key -> label for every key, in key order.
  const std::vector<std::string>& values() const { return values_; }

  /// The key of `label`, or nullopt when it was not seen in fit.
  std::optional<int64_t> find(std::string_view label) const;
  /// The key of `label`; throws kiln::Error naming the label and (some of) the known ones if
  /// unseen.
  int64_t key(std::string_view label) const;
  /// The label of `key`; throws kiln::Error when key is outside [0, K).
  const std::string& value(int64_t key) const;

  /// labels (N) -> keys (N). Unseen labels throw as key() does, naming the row.
  std::vector<int64_t> transform(std::span<const std::string> labels) const;
  /// A String column -> a Key column of the same name with this encoder's key table.
  Column transform(const Column& strings) const;
  /// keys (N) -> labels (N). Out-of-range keys throw as value() does, naming the row.
  std::vector<std::string> inverse_transform(std::span<const int64_t> keys) const;

  /// Writes a small text file: a "kiln-label-encoder 1" line, the count, then one escaped value per
  /// line in key order (written atomically).
  void save(const std::filesystem::path& path) const;
  /// Reads what save wrote; throws kiln::IOError naming the file and line on anything else.
  static LabelEncoder load(const std::filesystem::path& path);

 private:
  // Lets keys_ look up a string_view without copying it.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  [[noreturn]] void throw_unseen(std::string_view label, std::string_view where) const;

  std::vector<std::string> values_;
  std::unordered_map<std::string, int64_t, Hash, std::equal_to<>> keys_;
};

/// ML.NET's name for the same map (MapKeyToValue direction).
using KeyToValueMap = LabelEncoder;

}  // namespace kiln::data
