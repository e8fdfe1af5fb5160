#pragma once
// Helpers for the export tests: export a module, run the file in ONNX Runtime on inputs of other
// sizes than the export example, and compare with Kiln's own forward pass.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/module.h"
#include "kiln/onnx/export.h"
#include "kiln/onnx/reader.h"
#include "ort_runner.h"

namespace kiln::test {

/// Removes every file export_path() handed out (and its ".data" twin) when the test run ends.
class ExportedFiles : public ::testing::Environment {
 public:
  static std::vector<std::string>& paths() {
    static std::vector<std::string> p;
    return p;
  }
  void TearDown() override {
    std::error_code ec;
    for (const auto& p : paths()) {
      std::filesystem::remove(p, ec);
      std::filesystem::remove(p + ".data", ec);
    }
  }
};
inline ::testing::Environment* const kExportedFiles =
    ::testing::AddGlobalTestEnvironment(new ExportedFiles);

/// A path under the test temp dir, e.g. "<tmp>/kiln_export_1234_mlp.onnx" (the process id keeps
/// concurrent test runs apart); removed at the end of the run.
inline std::string export_path(const std::string& name) {
  std::string p = (std::filesystem::path(::testing::TempDir()) /
                   ("kiln_export_" + std::to_string(getpid()) + "_" + name + ".onnx"))
                      .string();
  ExportedFiles::paths().push_back(p);
  return p;
}

/// A Kiln tensor as an .npy array for ONNX Runtime.
inline NpyArray to_npy(const Tensor& t) {
  const std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  switch (t.dtype()) {
    case kFloat32: {
      auto v = t.to_vector<float>();
      return NpyArray::of<float>(shape, v);
    }
    case kFloat64: {
      auto v = t.to_vector<double>();
      return NpyArray::of<double>(shape, v);
    }
    case kInt64: {
      auto v = t.to_vector<int64_t>();
      return NpyArray::of<int64_t>(shape, v);
    }
    case kBool: {
      std::vector<uint8_t> v;
      for (int64_t x : t.to(kInt64).to_vector<int64_t>()) v.push_back(x != 0);
      return NpyArray::of_dtype<uint8_t>("bool", shape, v);
    }
    default:
      throw Error("to_npy: unsupported dtype");
  }
}

/// Result of comparing ONNX Runtime with Kiln on one input set.
struct Compared {
  std::vector<int64_t> kiln_shape, ort_shape;
  double max_abs_diff = 0;
  double max_abs_value = 0;  // of Kiln's output, to show the comparison is not trivial
};

/// Runs `module` (eval, no grad) and the ONNX file in ONNX Runtime on `inputs` (named in order by
/// `names`) and compares the single output `output`.
inline Compared compare_with_ort(nn::Module& module, const std::string& path,
                                 const std::vector<std::string>& names,
                                 const std::vector<Tensor>& inputs,
                                 const std::string& output = "output") {
  module.eval();
  Tensor expected;
  {
    NoGradGuard g;
    expected = inputs.size() == 1 ? module.forward(inputs[0]) : module.forward(inputs);
  }
  std::map<std::string, NpyArray> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) feeds.emplace(names[i], to_npy(inputs[i]));
  auto outs = run_in_ort(path, feeds);
  const NpyArray& got = outs.at(output);
  Compared c;
  c.kiln_shape.assign(expected.shape().begin(), expected.shape().end());
  c.ort_shape = got.shape;
  std::vector<double> want = expected.to(kFloat64).to_vector<double>();
  std::vector<double> have;
  if (got.dtype == "float32") {
    for (float v : got.values<float>()) have.push_back(v);
  } else if (got.dtype == "float64") {
    have = got.values<double>();
  } else if (got.dtype == "int64") {
    for (int64_t v : got.values<int64_t>()) have.push_back(static_cast<double>(v));
  } else {
    ADD_FAILURE() << "unexpected output dtype " << got.dtype;
    return c;
  }
  if (have.size() != want.size()) {
    c.max_abs_diff = INFINITY;
    return c;
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::abs(want[i] - have[i]);
    c.max_abs_diff = std::max(c.max_abs_diff, std::isnan(d) ? INFINITY : d);
    c.max_abs_value = std::max(c.max_abs_value, std::abs(want[i]));
  }
  return c;
}

/// The checker's verdict on a written file (full check + strict shape inference).
inline void expect_checker_passes(const std::string& path) {
  const onnx::CheckResult r = onnx::check_model(path);
  EXPECT_TRUE(r.ok) << r.message;
}

/// "batch", "sequence" or a number, per dim of a summarised value.
inline std::vector<std::string> dims_of(const onnx::ValueSummary& v) {
  std::vector<std::string> out;
  if (!v.shape) return out;
  for (const auto& d : *v.shape) out.push_back(d.is_value() ? std::to_string(*d.value) : d.param);
  return out;
}

}  // namespace kiln::test
