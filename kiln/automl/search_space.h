#pragma once
// Search spaces of hyper-parameters for kiln::automl's tuner: float (linear or log scale), int
// (linear or log scale) and categorical parameters, each with a low-cost initial value (the point
// FLAML's CFO starts from: the cheapest configuration, e.g. one epoch, few features).
//
//   SearchSpace space;
//   space.add(Param::log_float("learning_rate", 1e-4, 1.0, /*init=*/0.1));
//   space.add(Param::int_range("epochs", 1, 30, /*init=*/2));
//   space.add(Param::categorical("char_ngrams", {"none", "3-5"}, /*init=*/"none"));
//   Config c = space.initial();               // {learning_rate: 0.1, epochs: 2, char_ngrams: none}
//   std::vector<double> u = space.normalize(c);   // each coordinate in [0, 1]
//   Config back = space.denormalize(u);           // == c
//
// The tuner moves in the unit cube [0, 1]^D (D = number of parameters): a float or int maps
// linearly (or by log for log scale) from [low, high] to [0, 1]; a categorical with k choices maps
// choice i to the middle of the i-th of k equal slices, (i + 0.5) / k.
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kiln::automl {

/// One value of a configuration: a number (float and int parameters) or a choice.
using ParamValue = std::variant<double, std::string>;
/// A configuration: parameter name -> value.
using Config = std::map<std::string, ParamValue>;

/// One hyper-parameter.
struct Param {
  enum class Kind { Float, Int, Categorical };
  std::string name;
  Kind kind = Kind::Float;
  double low = 0, high = 1;  // Float / Int: the inclusive range (low < high; low > 0 for log)
  bool log = false;          // log scale
  std::vector<std::string> choices = {};  // Categorical: the values (>= 1)
  ParamValue init = 0.0;                  // the low-cost starting value

  /// Float on [low, high], uniform scale. Throws kiln::Error unless low < high and init in range.
  static Param uniform_float(std::string name, double low, double high, double init);
  /// Float on [low, high] on a log scale (0 < low < high).
  static Param log_float(std::string name, double low, double high, double init);
  /// Integer on [low, high]; log = true for a log scale (0 < low).
  static Param int_range(std::string name, int64_t low, int64_t high, int64_t init,
                         bool log = false);
  /// One of `choices` (distinct, at least one); init must be one of them.
  static Param categorical(std::string name, std::vector<std::string> choices, std::string init);

  /// Value -> coordinate in [0, 1].
  double to_unit(const ParamValue& v) const;
  /// Coordinate (clamped to [0, 1]) -> value: rounded for Int, the slice's choice for Categorical.
  ParamValue from_unit(double u) const;
};

/// An ordered list of parameters with distinct names.
class SearchSpace {
 public:
  /// Appends `p`; throws kiln::Error when the name repeats.
  SearchSpace& add(Param p);
  const std::vector<Param>& params() const { return params_; }
  size_t size() const { return params_.size(); }
  /// The configuration of every parameter's init value.
  Config initial() const;
  /// Config -> point of [0, 1]^D (D = size()). Throws naming a missing parameter.
  std::vector<double> normalize(const Config& c) const;
  /// Point of [0, 1]^D -> Config (coordinates clamped).
  Config denormalize(const std::vector<double>& u) const;

 private:
  std::vector<Param> params_;
};

/// The number of `name` in c (throws kiln::Error when absent or a choice).
double get_number(const Config& c, const std::string& name);
/// The choice `name` in c (throws when absent or a number).
const std::string& get_choice(const Config& c, const std::string& name);
/// "learning_rate=0.1 epochs=2 char_ngrams=none" (numbers in shortest form, ints without ".0").
std::string to_string(const Config& c);

}  // namespace kiln::automl
