// Every op Kiln records (the declarations in kiln/autograd/ops, collected at static
// initialisation: kiln/autograd/op_registry.h) either has a lowering in export_model's op table or
// is on the list below with the reason it has none. A new op therefore fails this test until it is
// exportable or listed, and the list cannot keep an op that has since become exportable.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "kiln/autograd/op_registry.h"
#include "kiln/onnx/export.h"

namespace kiln::test {
namespace {

// Op → why export_model does not translate it.
const std::map<std::string, std::string> kNotExportable = {
    {"cross_entropy", "a training loss; models are exported without their loss"},
    {"dropout_add_layer_norm",
     "recorded only while dropout is active (training); in eval mode the same call records add + "
     "layer_norm, which export lowers"},
    {"nll_loss", "a training loss; models are exported without their loss"},
    {"one_hot", "not lowered yet (ONNX OneHot would do)"},
    {"scatter_add", "not lowered yet (ScatterElements with reduction = add, opset 16)"},
    {"sort", "ONNX has no Sort; not lowered yet (TopK with k = the dim's size would do)"},
};

TEST(ExportCoverage, EveryRecordedOpIsExportableOrListed) {
  const std::map<std::string, bool> declared = declared_op_names();
  ASSERT_GT(declared.size(), 50u) << "too few declared ops: are kiln/autograd/ops linked?";
  const std::vector<std::string> table = onnx::exportable_ops();
  const std::set<std::string> exportable(table.begin(), table.end());
  for (const auto& [op, differentiable] : declared) {
    (void)differentiable;
    EXPECT_TRUE(exportable.count(op) || kNotExportable.count(op))
        << "op '" << op
        << "' has no ONNX lowering (kiln/onnx/export_ops.cpp's op table) and is not "
        << "on this test's not-exportable list";
  }
  for (const auto& [op, why] : kNotExportable) {
    EXPECT_TRUE(declared.count(op)) << "'" << op << "' is listed but no ops file declares it";
    EXPECT_FALSE(exportable.count(op)) << "'" << op << "' is exportable now: take it off the list";
  }
  for (const std::string& op : exportable)
    EXPECT_TRUE(declared.count(op)) << "the op table lowers '" << op << "', which no op records";
}

}  // namespace
}  // namespace kiln::test
