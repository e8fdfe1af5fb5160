// The ONNX Runtime runner the export tests rely on: .npy files byte-identical to NumPy's, and
// models from ONNX's own test data run in ONNX Runtime through tests/onnx/ort_run.js reproduce the
// reference outputs shipped with them (output_0.pb, read through the onnx proto classes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "kiln/onnx/reader.h"
#include "ort_runner.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(KILN_TEST_DATA_DIR) + "/onnx/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Npy, ReadsNumpyFiles) {
  const NpyArray f = read_npy(fixture("f32_2x3.npy"));
  EXPECT_EQ(f.dtype, "float32");
  EXPECT_EQ(f.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.values<float>(), (std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1, 1.25f}));
  const NpyArray i = read_npy(fixture("i64_scalar.npy"));
  EXPECT_EQ(i.dtype, "int64");
  EXPECT_TRUE(i.shape.empty());
  EXPECT_EQ(i.values<int64_t>(), std::vector<int64_t>{-7});
  const NpyArray b = read_npy(fixture("bool_3.npy"));
  EXPECT_EQ(b.dtype, "bool");
  EXPECT_EQ(b.values<uint8_t>(), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_THROW(f.values<double>(), TypeError);
  EXPECT_THROW(read_npy(fixture("garbage.onnx")), IOError);
}

TEST(Npy, WritesWhatNumpyWrites) {
  // Same bytes as np.save, header padding included.
  const fs::path dir = fs::temp_directory_path();
  const std::vector<float> f = {0, 0.25f, 0.5f, 0.75f, 1, 1.25f};
  const std::vector<int64_t> scalar = {-7};
  const bool flags[] = {true, false, true};
  const std::pair<std::string, NpyArray> cases[] = {
      {"f32_2x3.npy", NpyArray::of<float>({2, 3}, f)},
      {"i64_scalar.npy", NpyArray::of<int64_t>({}, scalar)},
      {"bool_3.npy", NpyArray::of<bool>({3}, flags)},
  };
  for (const auto& [name, array] : cases) {
    const std::string out = (dir / ("kiln_npy_test_" + name)).string();
    write_npy(out, array);
    EXPECT_EQ(read_file(out), read_file(fixture(name))) << name;
    fs::remove(out);
  }
  EXPECT_THROW(NpyArray::of<float>({4}, f), ShapeError);
}

// Compares ONNX Runtime's output with the reference tensor from ONNX's test data.
// Tolerance: ONNX's backend test runner's own (onnx/backend/test/runner: rtol 1e-3, atol 1e-7);
// the references were computed by NumPy implementations, not by ONNX Runtime. Integers and bools
// must match exactly.
void expect_matches_reference(const NpyArray& got, const onnx::TensorData& want,
                              const std::string& what) {
  ASSERT_EQ(got.dtype, want.dtype) << what;
  ASSERT_EQ(got.shape, want.dims) << what;
  if (got.dtype == "float32" || got.dtype == "float64") {
    const bool f32 = got.dtype == "float32";
    const int64_t n = got.numel();
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      double a, b;
      if (f32) {
        float x, y;
        std::memcpy(&x, got.bytes.data() + 4 * i, 4);
        std::memcpy(&y, want.data.data() + 4 * i, 4);
        a = x, b = y;
      } else {
        std::memcpy(&a, got.bytes.data() + 8 * i, 8);
        std::memcpy(&b, want.data.data() + 8 * i, 8);
      }
      const bool close =
          std::abs(a - b) <= 1e-7 + 1e-3 * std::abs(b) || (std::isnan(a) && std::isnan(b));
      if (!close && bad++ < 5) ADD_FAILURE() << what << "[" << i << "]: ort " << a << " vs " << b;
    }
  } else {
    EXPECT_TRUE(std::memcmp(got.bytes.data(), want.data.data(), got.bytes.size()) == 0) << what;
  }
}

TEST(OrtRunner, ReproducesOnnxTestDataReferences) {
  // float32 conv/pool/norm/recurrent/reductions, float64, int32, int64 and bool outputs. (ONNX
  // Runtime 1.30 no longer runs opset 6, so the old PyTorch exports in the test data are left out.)
  const char* models[] = {
      "node/test_conv_with_strides_padding",
      "node/test_gemm_all_attributes",
      "node/test_batchnorm_example",
      "node/test_maxpool_2d_default",
      "node/test_averagepool_2d_default",
      "node/test_erf",
      "node/test_einsum_batch_matmul",
      "node/test_reduce_mean_keepdims_example",
      "node/test_gru_defaults",
      "node/test_lstm_with_peepholes",
      "node/test_softmax_example",
      "node/test_matmul_4d",
      "node/test_layer_normalization_3d_axis_negative_3_epsilon_expanded",
      "node/test_argmax_default_axis_example",
      "node/test_and2d",
      "node/test_where_example",
      "node/test_cast_FLOAT_to_DOUBLE",
      "node/test_range_int32_type_negative_delta",
      "node/test_gather_0",
  };

  for (const char* dir_name : models) {
    const std::string dir = onnx_testdata_dir() + "/" + dir_name;
    SCOPED_TRACE(dir);
    const onnx::ModelSummary s = onnx::inspect_model(dir + "/model.onnx");
    std::map<std::string, NpyArray> inputs;
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      const auto t = onnx::read_tensor_proto(fmt::format("{}/test_data_set_0/input_{}.pb", dir, k));
      inputs[s.inputs[k].name] = NpyArray{t.dtype, t.dims, t.data};
    }
    const auto outputs = run_in_ort(dir + "/model.onnx", inputs);
    ASSERT_EQ(outputs.size(), s.outputs.size());
    for (size_t k = 0; k < s.outputs.size(); ++k) {
      const std::string ref = fmt::format("{}/test_data_set_0/output_{}.pb", dir, k);
      ASSERT_TRUE(fs::exists(ref)) << "reference output missing: " << ref;
      expect_matches_reference(outputs.at(s.outputs[k].name), onnx::read_tensor_proto(ref),
                               fmt::format("{} output '{}'", dir_name, s.outputs[k].name));
    }
  }
}

TEST(OrtRunner, HonoursSymbolicBatchDims) {
  // mlp_dynamic.onnx declares x: [batch, 8]; any batch must run.
  for (int64_t batch : {1, 5}) {
    std::vector<float> x(static_cast<size_t>(batch) * 8);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) * 0.25f - 0.5f;
    const auto out =
        run_in_ort(fixture("mlp_dynamic.onnx"), {{"x", NpyArray::of<float>({batch, 8}, x)}});
    ASSERT_EQ(out.size(), 2u);
    const NpyArray& probs = out.at("probs");
    EXPECT_EQ(probs.shape, (std::vector<int64_t>{batch, 3}));
    const auto p = probs.values<float>();
    for (int64_t r = 0; r < batch; ++r) {
      EXPECT_NEAR(p[3 * r] + p[3 * r + 1] + p[3 * r + 2], 1.0f, 1e-6f) << "softmax row " << r;
    }
  }
}

TEST(OrtRunner, ReadsExternalDataAndInt64Inputs) {
  const std::vector<int64_t> ids = {0, 15, 3, 3};
  const auto out =
      run_in_ort(fixture("external_data.onnx"), {{"ids", NpyArray::of<int64_t>({2, 2}, ids)}});
  const NpyArray& v = out.at("vectors");
  EXPECT_EQ(v.shape, (std::vector<int64_t>{2, 2, 4}));
  const auto x = v.values<float>();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(x[8 + k], x[12 + k]) << "ids 3 and 3 gather the same row";
}

std::string error_of(const std::string& model, const std::map<std::string, NpyArray>& inputs) {
  try {
    run_in_ort(model, inputs);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(OrtRunner, ReportsWhatWentWrong) {
  const std::vector<float> x(8, 0.f);
  const auto good = NpyArray::of<float>({1, 8}, x);
  EXPECT_NE(error_of(fixture("garbage.onnx"), {{"x", good}}).find("ONNX Runtime cannot load"),
            std::string::npos);
  EXPECT_NE(error_of(fixture("mlp_dynamic.onnx"), {{"y", good}}).find("'y' is not an input"),
            std::string::npos);
  EXPECT_NE(error_of(fixture("mlp_dynamic.onnx"), {}).find("no value given for input(s) x"),
            std::string::npos);
  const auto wrong = NpyArray::of<float>({1, 4}, std::span(x).first(4));
  EXPECT_NE(error_of(fixture("mlp_dynamic.onnx"), {{"x", wrong}}).find("failed to run"),
            std::string::npos);

  ::setenv("KILN_NODE", "/nonexistent/node", 1);
  const std::string missing = error_of(fixture("mlp_dynamic.onnx"), {{"x", good}});
  ::unsetenv("KILN_NODE");
  EXPECT_NE(missing.find("/nonexistent/node (from $KILN_NODE) is not executable"),
            std::string::npos)
      << missing;
}

}  // namespace
}  // namespace kiln::test
