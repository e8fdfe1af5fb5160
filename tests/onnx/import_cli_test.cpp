// `kiln run` and `kiln score` end to end: a model exported by Kiln with a dynamic batch is run on
// an .npy input and scores a CSV table; both must give the module's own outputs. A model with an
// operator Kiln lacks fails with exit status 1 and the one-line list of operators.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "export_helpers.h"
#include "kiln/data/csv.h"
#include "kiln/io/npy.h"
#include "kiln/nn/activation.h"
#include "kiln/nn/container.h"
#include "kiln/nn/linear.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

std::string run_cli(const std::string& args, int* rc) {
  const std::string kiln = std::string(KILN_BINARY_DIR) + "/tools/kiln";
  std::string out;
  FILE* p = popen((kiln + " " + args + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class ImportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(std::string(KILN_BINARY_DIR) + "/tools/kiln"))
        << "build the kiln_cli target before running test_onnx";
    dir_ = fs::path(::testing::TempDir()) / ("kiln_import_cli_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    manual_seed(91);
    mlp_ = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
        std::make_shared<nn::Linear>(nn::LinearOptions(3, 8)), std::make_shared<nn::Tanh>(),
        std::make_shared<nn::Linear>(nn::LinearOptions(8, 2))});
    onnx::ExportOptions o;
    o.input_names = {"features"};
    o.output_names = {"scores"};
    o.dynamic_axes = {{"features", {{0, "batch"}}}};
    model_ = (dir_ / "tabular.onnx").string();
    onnx::export_model(*mlp_, {randn({4, 3})}, model_, o);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Tensor expected(const Tensor& x) {
    NoGradGuard g;
    mlp_->eval();
    return mlp_->forward(x);
  }
  fs::path dir_;
  std::string model_;
  std::shared_ptr<nn::Sequential> mlp_;
};

TEST_F(ImportCli, RunWritesOneNpyPerOutputWithTheModulesValues) {
  const Tensor x = randn({5, 3});
  save_npy(x, (dir_ / "x.npy").string());
  int rc = -1;
  const std::string out =
      run_cli("run '" + model_ + "' --input features='" + (dir_ / "x.npy").string() +
                  "' --output-dir '" + (dir_ / "out").string() + "'",
              &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("scores float32 [5, 2]"), std::string::npos) << out;
  const Tensor got = load_npy((dir_ / "out" / "scores.npy").string());
  const Tensor want = expected(x);
  ASSERT_EQ(got.shape(), want.shape());
  const auto a = got.to_vector<float>(), b = want.to_vector<float>();
  for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-5);
}

TEST_F(ImportCli, ScoreAppendsOutputColumnsToTheTable) {
  {
    std::ofstream csv(dir_ / "in.csv");
    csv << "id,a,b,c,note\n1,0.5,-1.25,2,x\n2,1.5,0.25,-3,y\n3,0,0,0,z\n";
  }
  int rc = -1;
  const std::string out =
      run_cli("score --model '" + model_ + "' --data '" + (dir_ / "in.csv").string() +
                  "' --input-cols a,b,c --out '" + (dir_ / "scored.csv").string() + "'",
              &rc);
  ASSERT_EQ(rc, 0) << out;
  const data::Table t = data::infer_types(data::load_csv(dir_ / "scored.csv"));
  EXPECT_EQ(t.column_names(),
            (std::vector<std::string>{"id", "a", "b", "c", "note", "scores.0", "scores.1"}));
  const Tensor want =
      expected(tensor({0.5f, -1.25f, 2.f, 1.5f, 0.25f, -3.f, 0.f, 0.f, 0.f}, {3, 3}));
  const auto w = want.to_vector<float>();
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_NEAR(t["scores.0"].floats()[r], w[2 * r], 1e-5);
    EXPECT_NEAR(t["scores.1"].floats()[r], w[2 * r + 1], 1e-5);
  }
}

TEST_F(ImportCli, UnsupportedOperatorsFailWithTheirList) {
  int rc = -1;
  const std::string out = run_cli("run " + onnx_testdata_dir() + "/node/test_if/model.onnx", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("uses operators Kiln does not implement: If (opset 11)"), std::string::npos)
      << out;
  const std::string usage = run_cli("score --model '" + model_ + "'", &rc);
  EXPECT_EQ(rc, 2) << usage;
}

}  // namespace
}  // namespace kiln::test
