#pragma once
// Run filters, MLflow's search syntax cut to what a person types:
//
//   metrics.accuracy > 0.9 and params.lr = 0.001 and tags.preset != 'bert' and status = finished
//
// Clauses joined by "and" (any case); each is FIELD OP VALUE with FIELD one of metrics.<key>
// (the key's final value), params.<key>, tags.<key>, or status / name / experiment / id; OP one of
// = == != < <= > >=; VALUE a number, a word, or a string in single or double quotes. Two numbers
// compare as numbers, anything else as text (< and > then compare text). A run without the field
// never matches.
#include <string>
#include <string_view>
#include <vector>

namespace kiln::track {

struct RunRecord;

class RunFilter {
 public:
  /// Parses `text` (empty matches every run); throws kiln::Error naming the clause and the rule.
  static RunFilter parse(std::string_view text);
  bool matches(const RunRecord& run) const;
  bool empty() const { return clauses_.empty(); }

 private:
  struct Clause {
    std::string scope;  // "metrics", "params", "tags", "attributes"
    std::string key;
    std::string op;
    std::string value;
  };
  std::vector<Clause> clauses_;
};

}  // namespace kiln::track
