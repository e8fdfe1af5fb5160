// ONNX's own conformance data (Debian's libonnx-testdata: node/, pytorch-converted/,
// pytorch-operator/, simple/): every model whose operators and element types Kiln implements is
// imported, run on each test_data_set_N/input_*.pb and compared with output_*.pb. Each file is
// read as the model declares that input or output: a TensorProto, a string tensor or a
// SequenceProto (compared element by element).
//
// float16 data (inputs, expected outputs) is loaded as float32, the dtype import_model holds
// float16 values in; Cast/CastLike to float16 round to half precision, so those outputs compare
// exactly.
//
// Tolerances: ONNX's backend test runner compares with rtol 1e-3, atol 1e-7; Kiln uses the same
// rtol and atol 1e-5 for float32 (Kiln's vectorised exp/log/erf/tanh are accurate to a few ulp, so
// values near zero differ by ~1e-6 absolute), with these per-op exceptions:
//   - float64 models: rtol 1e-6, atol 1e-9 (Kiln computes them in double throughout);
//   - integer, bool and string outputs: exact.
// The test prints the count of passing models per folder (so the number can only go up: the
// thresholds below are the counts reached) and, with KILN_ONNX_CONFORMANCE_REPORT=1, a line per
// model that fails or is skipped, and the pass table by operator.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kiln/autograd/grad_mode.h"
#include "kiln/onnx/import.h"
#include "kiln/onnx/reader.h"

namespace kiln::onnx {
namespace {

namespace fs = std::filesystem;

const char* kDataRoot = "/usr/share/libonnx-testdata/data";

enum class Outcome { Pass, Fail, Unsupported };

struct Result {
  std::string folder, name, op;
  int64_t opset = 0;
  Outcome outcome = Outcome::Fail;
  std::string why;
};

struct Tol {
  double rtol, atol;
};
Tol tolerance_for(DType d) {
  if (d == kFloat64) return {1e-6, 1e-9};
  return {1e-3, 1e-5};
}

// "" when equal within tolerance, else a description of the first mismatch.
std::string compare(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape())
    return fmt::format("shape [{}] vs expected [{}]", fmt::join(got.shape(), ", "),
                       fmt::join(want.shape(), ", "));
  if (got.dtype() != want.dtype())
    return fmt::format("dtype {} vs expected {}", got.dtype(), want.dtype());
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  const bool exact = !is_floating(want.dtype());
  const Tol tol = tolerance_for(want.dtype());
  for (size_t k = 0; k < g.size(); ++k) {
    if (std::isnan(w[k]) && std::isnan(g[k])) continue;
    if (w[k] == g[k]) continue;
    const double err = std::abs(g[k] - w[k]);
    if (!exact && err <= tol.atol + tol.rtol * std::abs(w[k])) continue;
    return fmt::format("element {}: {} vs expected {}", k, g[k], w[k]);
  }
  return "";
}

// Sequences compare element by element; string tensors exactly.
std::string compare(const Value& got, const Value& want) {
  if (got.index() != want.index()) return "a different kind of value (tensor/sequence/strings)";
  if (std::holds_alternative<EmptyOptional>(want)) return "";
  if (const auto* w = std::get_if<Tensor>(&want)) return compare(std::get<Tensor>(got), *w);
  if (const auto* w = std::get_if<StringTensor>(&want)) {
    const auto& g = std::get<StringTensor>(got);
    if (g.shape != w->shape)
      return fmt::format("shape [{}] vs expected [{}]", fmt::join(g.shape, ", "),
                         fmt::join(w->shape, ", "));
    for (size_t k = 0; k < w->data.size(); ++k)
      if (g.data[k] != w->data[k])
        return fmt::format("element {}: '{}' vs expected '{}'", k, g.data[k], w->data[k]);
    return "";
  }
  const auto& g = std::get<std::vector<Tensor>>(got);
  const auto& w = std::get<std::vector<Tensor>>(want);
  if (g.size() != w.size()) return fmt::format("sequence of {} vs expected {}", g.size(), w.size());
  for (size_t k = 0; k < w.size(); ++k) {
    const std::string d = compare(g[k], w[k]);
    if (!d.empty()) return fmt::format("sequence element {}: {}", k, d);
  }
  return "";
}

Result run_model(const fs::path& dir) {
  Result r;
  r.folder = dir.parent_path().filename().string();
  r.name = dir.filename().string();
  const std::string model_path = (dir / "model.onnx").string();
  try {
    const ModelSummary s = inspect_model(model_path);
    for (const auto& o : s.opset_import)
      if (o.domain.empty() || o.domain == "ai.onnx") r.opset = o.version;
    if (!s.ops.empty()) r.op = s.ops.front().first;
    if (r.folder == "node" && !s.ops.empty()) {  // the op under test: the least frequent one
      r.op = s.ops.back().first;
    }
  } catch (const std::exception& e) {
    r.why = e.what();
    return r;
  }
  std::shared_ptr<OnnxModule> model;
  try {
    model = import_model(model_path);
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    r.outcome = msg.find("does not implement") != std::string::npos ||
                        msg.find("does not support") != std::string::npos
                    ? Outcome::Unsupported
                    : Outcome::Fail;
    r.why = msg;
    return r;
  }
  int sets = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_directory() || entry.path().filename().string().rfind("test_data_set_", 0) != 0)
      continue;
    ++sets;
    std::vector<Value> inputs, expected;
    try {
      // Each file is read as the value the model declares there (tensor, sequence or strings).
      for (size_t k = 0;; ++k) {
        const fs::path p = entry.path() / fmt::format("input_{}.pb", k);
        if (!fs::exists(p)) break;
        inputs.push_back(k < model->inputs().size()
                             ? load_value_proto(p.string(), model->inputs()[k])
                             : Value(load_tensor_proto(p.string())));
      }
      for (size_t k = 0;; ++k) {
        const fs::path p = entry.path() / fmt::format("output_{}.pb", k);
        if (!fs::exists(p)) break;
        expected.push_back(k < model->outputs().size()
                               ? load_value_proto(p.string(), model->outputs()[k])
                               : Value(load_tensor_proto(p.string())));
      }
    } catch (const std::exception& e) {
      r.outcome = Outcome::Unsupported;  // reference data in a type Kiln lacks (float16, string)
      r.why = e.what();
      return r;
    }
    try {
      NoGradGuard no_grad;
      const std::vector<Value> got = model->run_values(inputs);
      for (size_t k = 0; k < expected.size(); ++k) {
        const std::string diff = k < got.size() ? compare(got[k], expected[k]) : "missing";
        if (!diff.empty()) {
          r.why = fmt::format("{}: output {}: {}", entry.path().filename().string(), k, diff);
          return r;
        }
      }
    } catch (const std::exception& e) {
      const std::string msg = e.what();
      r.outcome =
          msg.find("not supported") != std::string::npos ? Outcome::Unsupported : Outcome::Fail;
      r.why = msg;
      return r;
    }
  }
  if (sets == 0) {
    r.why = "no test data";
    return r;
  }
  r.outcome = Outcome::Pass;
  return r;
}

std::vector<Result> run_folder(const std::string& folder) {
  std::vector<fs::path> dirs;
  const fs::path root = fs::path(kDataRoot) / folder;
  if (!fs::exists(root)) return {};
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<Result> out;
  for (const auto& d : dirs) out.push_back(run_model(d));
  return out;
}

struct Counts {
  int total = 0, pass = 0, fail = 0, unsupported = 0;
};
Counts count(const std::vector<Result>& rs, int64_t max_opset = 1000) {
  Counts c;
  for (const auto& r : rs) {
    if (r.opset > max_opset) continue;
    ++c.total;
    if (r.outcome == Outcome::Pass) ++c.pass;
    if (r.outcome == Outcome::Fail) ++c.fail;
    if (r.outcome == Outcome::Unsupported) ++c.unsupported;
  }
  return c;
}

void report(const std::string& folder, const std::vector<Result>& rs) {
  const Counts c = count(rs);
  fmt::print("[conformance] {:<18} {:4} models: {:4} pass, {:4} fail, {:4} unsupported\n", folder,
             c.total, c.pass, c.fail, c.unsupported);
  if (std::getenv("KILN_ONNX_CONFORMANCE_REPORT") == nullptr) return;
  for (const auto& r : rs)
    if (r.outcome != Outcome::Pass)
      fmt::print("  {} {}/{} [{} opset {}]: {}\n", r.outcome == Outcome::Fail ? "FAIL" : "SKIP",
                 folder, r.name, r.op, r.opset, r.why.substr(0, 300));
  std::map<std::string, Counts> by_op;
  for (const auto& r : rs) {
    Counts& c2 = by_op[r.op];
    ++c2.total;
    c2.pass += r.outcome == Outcome::Pass;
    c2.fail += r.outcome == Outcome::Fail;
    c2.unsupported += r.outcome == Outcome::Unsupported;
  }
  for (const auto& [op, c2] : by_op)
    fmt::print("  op {:<28} {:3}/{:3} pass ({} fail, {} unsupported)\n", op, c2.pass, c2.total,
               c2.fail, c2.unsupported);
}

class Conformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kDataRoot)) GTEST_SKIP() << "libonnx-testdata is not installed";
  }
};

TEST_F(Conformance, NodeTests) {
  const auto rs = run_folder("node");
  report("node", rs);
  const Counts c17 = count(rs, 17);
  fmt::print("[conformance] node opset<=17: {}/{} pass ({:.1f}%)\n", c17.pass, c17.total,
             100.0 * c17.pass / std::max(c17.total, 1));
  // What does not pass: operators Kiln lacks (listed by the report: control flow, SequenceMap,
  // Bernoulli/RandomUniformLike), element types Kiln has no dtype for
  // (bfloat16, int8, int16, uint16/32/64); test_training_dropout*
  // draw their masks from NumPy's generator (no implementation can match); test_adam_multiple's
  // node omits the epsilon its expected output was computed with (1e-2; the spec's default, which
  // Kiln uses, is 1e-6).
  EXPECT_GE(c17.pass, 867);
}

TEST_F(Conformance, PytorchConverted) {
  const auto rs = run_folder("pytorch-converted");
  report("pytorch-converted", rs);
  EXPECT_EQ(count(rs).pass, count(rs).total);
}

TEST_F(Conformance, PytorchOperator) {
  const auto rs = run_folder("pytorch-operator");
  report("pytorch-operator", rs);
  EXPECT_EQ(count(rs).pass, count(rs).total);
}

TEST_F(Conformance, Simple) {
  const auto rs = run_folder("simple");
  report("simple", rs);
  EXPECT_EQ(count(rs).pass, count(rs).total);
}

}  // namespace
}  // namespace kiln::onnx
