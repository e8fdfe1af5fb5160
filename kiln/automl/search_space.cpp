#include "kiln/automl/search_space.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "kiln/tensor/error.h"

namespace kiln::automl {
namespace {

void check_range(const Param& p, double init) {
  KILN_CHECK(p.low < p.high, "automl::Param '{}': low {} must be below high {}", p.name, p.low,
             p.high);
  KILN_CHECK(!p.log || p.low > 0, "automl::Param '{}': a log scale needs low > 0, got {}", p.name,
             p.low);
  KILN_CHECK(init >= p.low && init <= p.high, "automl::Param '{}': init {} lies outside [{}, {}]",
             p.name, init, p.low, p.high);
}

}  // namespace

Param Param::uniform_float(std::string name, double low, double high, double init) {
  Param p{.name = std::move(name), .kind = Kind::Float, .low = low, .high = high, .init = init};
  check_range(p, init);
  return p;
}

Param Param::log_float(std::string name, double low, double high, double init) {
  Param p{.name = std::move(name),
          .kind = Kind::Float,
          .low = low,
          .high = high,
          .log = true,
          .init = init};
  check_range(p, init);
  return p;
}

Param Param::int_range(std::string name, int64_t low, int64_t high, int64_t init, bool log) {
  Param p{.name = std::move(name),
          .kind = Kind::Int,
          .low = static_cast<double>(low),
          .high = static_cast<double>(high),
          .log = log,
          .init = static_cast<double>(init)};
  check_range(p, static_cast<double>(init));
  return p;
}

Param Param::categorical(std::string name, std::vector<std::string> choices, std::string init) {
  KILN_CHECK(!choices.empty(), "automl::Param '{}': a categorical needs at least one choice", name);
  std::vector<std::string> sorted = choices;
  std::sort(sorted.begin(), sorted.end());
  KILN_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
             "automl::Param '{}': choices repeat ({})", name, fmt::join(choices, ", "));
  KILN_CHECK(std::find(choices.begin(), choices.end(), init) != choices.end(),
             "automl::Param '{}': init '{}' is not one of the choices ({})", name, init,
             fmt::join(choices, ", "));
  return Param{.name = std::move(name),
               .kind = Kind::Categorical,
               .choices = std::move(choices),
               .init = std::move(init)};
}

double Param::to_unit(const ParamValue& v) const {
  if (kind == Kind::Categorical) {
    KILN_CHECK(std::holds_alternative<std::string>(v),
               "automl::Param '{}': a categorical value must be a choice, got a number", name);
    const auto it = std::find(choices.begin(), choices.end(), std::get<std::string>(v));
    KILN_CHECK(it != choices.end(), "automl::Param '{}': '{}' is not one of the choices ({})", name,
               std::get<std::string>(v), fmt::join(choices, ", "));
    return (static_cast<double>(it - choices.begin()) + 0.5) / static_cast<double>(choices.size());
  }
  KILN_CHECK(std::holds_alternative<double>(v),
             "automl::Param '{}': a numeric value must be a number, got '{}'", name,
             std::get<std::string>(v));
  const double x = std::clamp(std::get<double>(v), low, high);
  if (log) return (std::log(x) - std::log(low)) / (std::log(high) - std::log(low));
  return (x - low) / (high - low);
}

ParamValue Param::from_unit(double u) const {
  u = std::clamp(u, 0.0, 1.0);
  if (kind == Kind::Categorical) {
    const size_t k = choices.size();
    return choices[std::min(k - 1, static_cast<size_t>(u * static_cast<double>(k)))];
  }
  double x =
      log ? std::exp(std::log(low) + u * (std::log(high) - std::log(low))) : low + u * (high - low);
  x = std::clamp(x, low, high);
  if (kind == Kind::Int) x = std::round(x);
  return x;
}

SearchSpace& SearchSpace::add(Param p) {
  for (const Param& q : params_) {
    KILN_CHECK(q.name != p.name, "automl::SearchSpace: parameter '{}' is already declared", p.name);
  }
  params_.push_back(std::move(p));
  return *this;
}

Config SearchSpace::initial() const {
  Config c;
  for (const Param& p : params_) c[p.name] = p.init;
  return c;
}

std::vector<double> SearchSpace::normalize(const Config& c) const {
  std::vector<double> u;
  u.reserve(params_.size());
  for (const Param& p : params_) {
    const auto it = c.find(p.name);
    KILN_CHECK(it != c.end(), "automl::SearchSpace::normalize: the config has no '{}' ({})", p.name,
               to_string(c));
    u.push_back(p.to_unit(it->second));
  }
  return u;
}

Config SearchSpace::denormalize(const std::vector<double>& u) const {
  KILN_CHECK(u.size() == params_.size(),
             "automl::SearchSpace::denormalize: point has {} coordinates, the space {} parameters",
             u.size(), params_.size());
  Config c;
  for (size_t i = 0; i < params_.size(); ++i) c[params_[i].name] = params_[i].from_unit(u[i]);
  return c;
}

double get_number(const Config& c, const std::string& name) {
  const auto it = c.find(name);
  KILN_CHECK(it != c.end(), "automl: the config has no parameter '{}' ({})", name, to_string(c));
  KILN_CHECK(std::holds_alternative<double>(it->second),
             "automl: parameter '{}' is the choice '{}', not a number", name,
             std::get<std::string>(it->second));
  return std::get<double>(it->second);
}

const std::string& get_choice(const Config& c, const std::string& name) {
  const auto it = c.find(name);
  KILN_CHECK(it != c.end(), "automl: the config has no parameter '{}' ({})", name, to_string(c));
  KILN_CHECK(std::holds_alternative<std::string>(it->second),
             "automl: parameter '{}' is the number {}, not a choice", name,
             std::get<double>(it->second));
  return std::get<std::string>(it->second);
}

std::string to_string(const Config& c) {
  std::string out;
  for (const auto& [name, v] : c) {
    if (!out.empty()) out += ' ';
    if (std::holds_alternative<std::string>(v)) {
      out += fmt::format("{}={}", name, std::get<std::string>(v));
    } else {
      out += fmt::format("{}={:.4g}", name, std::get<double>(v));
    }
  }
  return out;
}

}  // namespace kiln::automl
