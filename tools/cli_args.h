#pragma once
// Argument parsing shared by the `kiln` subcommands: "--name value" pairs and bare "--flags".
//
//   Args a(args, {"--json"});            // the bare flags this command takes
//   a.check_known({"--data", "--json"});  // throws UsageError naming an unknown option
//   fs::path data = a.get("--data");      // throws UsageError "--data is required"
//   int64_t n = a.get_int("--epochs", 10);
//
// A command's main catches UsageError, prints it with its usage text and returns 2.
#include <fmt/format.h>

#include <charconv>
#include <initializer_list>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln::tools {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// --name value pairs and bare --flags.
class Args {
 public:
  Args(std::span<const std::string> args, std::initializer_list<std::string_view> flags) {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) != 0) throw UsageError(fmt::format("unexpected argument '{}'", a));
      bool is_flag = false;
      for (std::string_view f : flags) is_flag |= (a == f);
      if (is_flag) {
        values_.try_emplace(a);  // a flag: present, no value
      } else {
        if (i + 1 >= args.size()) throw UsageError(fmt::format("{} needs a value", a));
        values_[a] = args[++i];
      }
    }
  }
  bool has(const std::string& k) const { return values_.count(k) != 0; }
  std::string get(const std::string& k) const {
    auto it = values_.find(k);
    if (it == values_.end()) throw UsageError(fmt::format("{} is required", k));
    return it->second;
  }
  std::string get(const std::string& k, std::string fallback) const {
    return has(k) ? values_.at(k) : fallback;
  }
  int64_t get_int(const std::string& k, int64_t fallback) const {
    if (!has(k)) return fallback;
    const std::string& v = values_.at(k);
    int64_t out = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || p != v.data() + v.size())
      throw UsageError(fmt::format("{} wants an integer, got '{}'", k, v));
    return out;
  }
  double get_double(const std::string& k, double fallback) const {
    if (!has(k)) return fallback;
    const std::string& v = values_.at(k);
    size_t used = 0;
    double out = 0;
    try {
      out = std::stod(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || v.empty())
      throw UsageError(fmt::format("{} wants a number, got '{}'", k, v));
    return out;
  }
  void check_known(std::initializer_list<std::string_view> known) const {
    for (const auto& [k, v] : values_) {
      bool ok = false;
      for (std::string_view n : known) ok |= (k == n);
      if (!ok) throw UsageError(fmt::format("unknown option '{}'", k));
    }
  }

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace kiln::tools
