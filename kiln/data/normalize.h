#pragma once
// Feature normalisation fitted on training data and saved beside the model, as ML.NET's
// NormalizeMinMax / NormalizeMeanVariance: every column gets an affine map
//     y = (x - offset) * scale
// whose offset and scale are learned once (on the train split) and reapplied unchanged to the test
// split and at inference.
//
//   Normalizer norm = Normalizer::mean_variance(train, {"Age", "Fare"}, /*fix_zero=*/false);
//   norm.transform_in_place(train);
//   norm.transform_in_place(test);          // train's statistics, not test's
//   norm.save("model/normalizer.txt");
//   Normalizer same = Normalizer::load("model/normalizer.txt");
//
// Fitting follows ML.NET's formulas exactly (NormalizeTransform's MinMaxUtils / MeanVarUtils):
//   min-max,  fix_zero = false:  offset = min,  scale = 1 / (max - min)        -> [0, 1]
//   min-max,  fix_zero = true:   offset = 0,    scale = 1 / max(|min|, |max|)  -> [-1, 1], 0 stays
//   0 mean-var, fix_zero = false:  offset = mean, scale = 1 / std               -> mean 0, std 1
//   mean-var, fix_zero = true:   offset = 0,    scale = 1 / sqrt(var + mean^2) (1 / RMS), 0 stays 0
// std and var are population statistics (divide by N). A constant column gets scale = offset = 0,
// so it maps to 0. NaN and +-inf values are skipped while fitting and NaN stays NaN. fix_zero
// defaults to true, ML.NET's default; pass false for the textbook [0, 1] / z-score maps.
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/data/columns.h"

namespace kiln::data {

enum class NormalizerKind { MinMax, MeanVariance };

/// The fitted map of one column: y = (x - offset) * scale (ML.NET's AffineColumnFunction).
struct AffineNormalization {
  NormalizerKind kind = NormalizerKind::MinMax;
  bool fix_zero = true;
  double offset = 0.0;
  double scale = 1.0;

  float apply(float x) const { return static_cast<float>((x - offset) * scale); }
  /// x = y / scale + offset. A constant column (scale 0) cannot be inverted and gives offset.
  float invert(float y) const {
    return static_cast<float>(scale == 0.0 ? offset : y / scale + offset);
  }
};

/// Fits min-max on the finite values of x (N). Throws kiln::Error when none is finite.
AffineNormalization fit_min_max(std::span<const float> x, bool fix_zero = true);
/// Fits mean-variance on the finite values of x (N). Throws kiln::Error when none is finite.
AffineNormalization fit_mean_variance(std::span<const float> x, bool fix_zero = true);

/// Fitted maps for named Float columns of a Table.
class Normalizer {
 public:
  Normalizer() = default;

  /// Fits one map per named column (each must exist and hold floats).
  static Normalizer min_max(const Table& table, const std::vector<std::string>& columns,
                            bool fix_zero = true);
  static Normalizer mean_variance(const Table& table, const std::vector<std::string>& columns,
                                  bool fix_zero = true);

  /// Adds or replaces the map of `column`.
  void set(std::string column, AffineNormalization map);
  bool contains(std::string_view column) const;
  /// The map of `column`; throws kiln::Error listing the fitted columns when there is none.
  const AffineNormalization& params(std::string_view column) const;
  /// Fitted column names, in fit order.
  std::vector<std::string> column_names() const;

  /// Applies every map to its column of `table` (which must have them all, as floats).
  void transform_in_place(Table& table) const;
  /// A copy of `table` with the maps applied.
  Table transform(const Table& table) const;
  /// Applies / undoes the map of `column` on raw values, e.g. a regression target's predictions.
  void transform(std::string_view column, std::span<float> values) const;
  void inverse_transform(std::string_view column, std::span<float> values) const;

  /// Writes a small text file: "kiln-normalizer 1", the count, then one line per column:
  /// escaped name, kind, fix_zero, offset, scale (tab-separated, doubles in round-trip form).
  void save(const std::filesystem::path& path) const;
  /// Reads what save wrote; throws kiln::IOError naming the file and line on anything else.
  static Normalizer load(const std::filesystem::path& path);

 private:
  std::vector<std::pair<std::string, AffineNormalization>> maps_;
};

}  // namespace kiln::data
