// `kiln inspect --json` on a file export_model wrote: the CLI a user runs next reports the names,
// element types and symbolic shapes the exporter declared, and the checker's verdict.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "export_helpers.h"
#include "kiln/nn/activation.h"
#include "kiln/nn/container.h"
#include "kiln/nn/linear.h"

namespace kiln::test {
namespace {

// Runs a command and returns its stdout; `rc` gets the exit status.
std::string run_command(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(ExportCli, InspectJsonReportsTheExportedInterface) {
  const std::string kiln = std::string(KILN_BINARY_DIR) + "/tools/kiln";
  ASSERT_TRUE(std::filesystem::exists(kiln))
      << kiln << " is missing: build the kiln_cli target before running test_onnx";
  manual_seed(61);
  nn::Sequential mlp(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(12, 8)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(8, 3))});
  onnx::ExportOptions o;
  o.input_names = {"features"};
  o.output_names = {"logits"};
  o.dynamic_axes = {{"features", {{0, "batch"}}}};
  const std::string path = export_path("cli");
  onnx::export_model(mlp, {randn({4, 12})}, path, o);

  int rc = -1;
  const std::string out = run_command(kiln + " inspect --json --check '" + path + "'", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(R"("inputs":[{"name":"features","type":"float32","shape":["batch",12]}])"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("outputs":[{"name":"logits","type":"float32","shape":["batch",3]}])"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("ir_version":8)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("Gemm":2)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("check":{"ok":true)"), std::string::npos) << out;
}

}  // namespace
}  // namespace kiln::test
