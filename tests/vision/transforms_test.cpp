// Image transforms (kiln/vision/transforms.h): bilinear resize against PyTorch goldens, exact
// geometry, colour formulas, and seeded determinism across thread counts.
#include "kiln/vision/transforms.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "kiln/autograd/functions.h"
#include "kiln/io/npy.h"
#include "kiln/tensor/parallel.h"

using kiln::Shape;
using kiln::Tensor;
using namespace kiln::vision;

namespace {

Tensor golden(const std::string& name) {
  return kiln::load_npy(std::string(KILN_SOURCE_DIR) + "/tests/golden/vision/" + name + ".npy");
}

Tensor random_u8(Shape shape, uint64_t seed) {
  kiln::Generator gen(seed);
  return kiln::randint(0, 256, shape, kiln::kUInt8, &gen);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  Tensor x = a.to(kiln::kFloat64).contiguous(), y = b.to(kiln::kFloat64).contiguous();
  double m = 0;
  for (int64_t i = 0; i < x.numel(); ++i)
    m = std::max(m, std::abs(x.data_ptr<double>()[i] - y.data_ptr<double>()[i]));
  return m;
}

bool same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && max_abs_diff(a, b) == 0.0;
}

uint8_t px(const Tensor& hwc, int64_t y, int64_t x, int64_t c = 0) {
  return hwc.data_ptr<uint8_t>()[(y * hwc.size(1) + x) * hwc.size(2) + c];
}

}  // namespace

TEST(Resize, MatchesPyTorchInterpolateBilinear) {
  for (int k = 0; k < 6; ++k) {
    Tensor x = golden("resize_" + std::to_string(k) + "_x");
    Tensor want = golden("resize_" + std::to_string(k) + "_y");
    Tensor got = resize(x, want.size(1), want.size(2));
    ASSERT_EQ(got.shape(), want.shape()) << "case " << k;
    // Same float32 formula as PyTorch's CPU kernel; only the order of the 4 products may differ:
    // at most a few float32 ulp (1.2e-7 each) on values in [0, 1] (measured: 4 ulp).
    EXPECT_LE(max_abs_diff(got, want), 1e-6) << "case " << k;
  }
}

TEST(Resize, Uint8IsTheRoundedFloatResult) {
  Tensor img = random_u8({9, 11, 3}, 4);
  Tensor u8 = resize(img, 5, 16);
  ASSERT_EQ(u8.shape(), (Shape{5, 16, 3}));
  Tensor f = resize(img.permute({2, 0, 1}).to(kiln::kFloat32).contiguous(), 5, 16);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 5; ++y)
      for (int64_t x = 0; x < 16; ++x)
        EXPECT_EQ(px(u8, y, x, c), std::nearbyint(f.data_ptr<float>()[(c * 5 + y) * 16 + x]));
  // Same size is the identity.
  EXPECT_TRUE(same(resize(img, 9, 11), img));
}

TEST(Crop, CenterRandomAndPadding) {
  Tensor img = random_u8({6, 7, 1}, 1);
  Tensor c = center_crop(img, 3, 4);
  ASSERT_EQ(c.shape(), (Shape{3, 4, 1}));
  // top = round(1.5) = 2 (half to even), left = round(1.5) = 2.
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 4; ++x) EXPECT_EQ(px(c, y, x), px(img, y + 2, x + 2));
  // A window hanging over the top-left corner reads zeros there.
  Tensor o = crop(img, -1, -2, 3, 3);
  EXPECT_EQ(px(o, 0, 0), 0);
  EXPECT_EQ(px(o, 1, 1), 0);
  EXPECT_EQ(px(o, 1, 2), px(img, 0, 0));
  EXPECT_EQ(px(o, 2, 2), px(img, 1, 0));
  EXPECT_THROW(center_crop(img, 7, 2), kiln::ShapeError);
  // RandomCrop with padding: every output is a window of the zero-padded image.
  auto rc = random_crop(6, 7, 2);
  for (uint64_t s = 0; s < 20; ++s) {
    Tensor r = rc->apply(img, s);
    ASSERT_EQ(r.shape(), img.shape());
    bool found = false;
    for (int64_t t = -2; t <= 2 && !found; ++t)
      for (int64_t l = -2; l <= 2 && !found; ++l) found = same(r, crop(img, t, l, 6, 7));
    EXPECT_TRUE(found) << "seed " << s;
  }
}

TEST(Flip, MirrorsBothLayouts) {
  Tensor img = random_u8({4, 5, 3}, 2);
  Tensor f = hflip(img);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 5; ++x)
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(px(f, y, x, c), px(img, y, 4 - x, c));
  EXPECT_TRUE(same(hflip(f), img));
  Tensor t = to_tensor(img);
  EXPECT_TRUE(same(hflip(t), to_tensor(f)));
  // p = 1 always flips, p = 0 never does.
  EXPECT_TRUE(same(random_horizontal_flip(1.0)->apply(img, 3), f));
  EXPECT_TRUE(same(random_horizontal_flip(0.0)->apply(img, 3), img));
}

TEST(Affine, RotationsByRightAnglesAreExact) {
  Tensor img = random_u8({5, 5, 1}, 3);
  EXPECT_TRUE(same(affine(img, 0.0), img));
  Tensor r90 = affine(img, 90.0);
  Tensor r180 = affine(img, 180.0);
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t x = 0; x < 5; ++x) {
      EXPECT_EQ(px(r90, y, x), px(img, x, 4 - y));  // counter-clockwise, as numpy.rot90
      EXPECT_EQ(px(r180, y, x), px(img, 4 - y, 4 - x));
    }
  // Translation by whole pixels shifts and fills with zeros.
  Tensor sh = affine(img, 0.0, 1.0, 0.0);
  for (int64_t y = 0; y < 5; ++y) {
    EXPECT_EQ(px(sh, y, 0), 0);
    for (int64_t x = 1; x < 5; ++x) EXPECT_EQ(px(sh, y, x), px(img, y, x - 1));
  }
  // Scaling by 2 about the centre of a 5x5 image: output (2 ± 2k) samples input (2 ± k).
  Tensor sc = affine(img, 0.0, 0.0, 0.0, 2.0);
  EXPECT_EQ(px(sc, 0, 0), px(img, 1, 1));
  EXPECT_EQ(px(sc, 2, 4), px(img, 2, 3));
  // A random rotation is an affine rotation by the angle its Rng draws.
  Rng rng(11);
  double angle = rng.uniform(-30, 30);
  EXPECT_TRUE(same(random_rotation(30)->apply(img, 11), affine(img, angle)));
}

TEST(Affine, MatchesPyTorchGridSample) {
  for (int k = 0; k < 4; ++k) {
    const std::string base = "affine_" + std::to_string(k);
    Tensor x = golden(base + "_x"), want = golden(base + "_y"), p = golden(base + "_params");
    const double* a = p.data_ptr<double>();
    Tensor got = affine(x, a[0], a[1], a[2], a[3]);
    // Both sample in float64 and round once to float32; the 2x2 map is composed in a different
    // order (pixel vs normalised coordinates). Measured: at most 2 float32 ulp on values in [0, 1].
    EXPECT_LE(max_abs_diff(got, want), 1e-6) << "case " << k;
  }
}

TEST(Color, BrightnessContrastSaturationFormulas) {
  Tensor img = kiln::zeros({1, 2, 3}, kiln::kUInt8);
  const uint8_t v[] = {100, 50, 200, 10, 250, 30};
  std::copy(v, v + 6, img.data_ptr<uint8_t>());
  Tensor b = adjust_brightness(img, 1.5);
  EXPECT_EQ(px(b, 0, 0, 0), 150);
  EXPECT_EQ(px(b, 0, 0, 2), 255);  // 300 clamped
  EXPECT_EQ(px(b, 0, 1, 0), 15);
  // Saturation 0 gives the BT.601 gray in every channel.
  Tensor s0 = adjust_saturation(img, 0.0);
  const double g0 = 0.299 * 100 + 0.587 * 50 + 0.114 * 200;
  for (int c = 0; c < 3; ++c) EXPECT_EQ(px(s0, 0, 0, c), std::lround(g0));
  // Contrast 0 gives the mean gray everywhere; contrast 1 is the identity.
  const double g1 = 0.299 * 10 + 0.587 * 250 + 0.114 * 30;
  Tensor c0 = adjust_contrast(img, 0.0);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(px(c0, 0, 1, c), std::lround((g0 + g1) / 2));
  EXPECT_TRUE(same(adjust_contrast(img, 1.0), img));
  // On float images the clamp is to [0, 1].
  Tensor f = adjust_brightness(to_tensor(img), 2.0);
  EXPECT_FLOAT_EQ(f.data_ptr<float>()[0], 200.0f / 255.0f);
  EXPECT_FLOAT_EQ(f.data_ptr<float>()[4], 1.0f);
}

// Python's colorsys, in double: the reference twin of adjust_hue's HSV round trip.
void colorsys_shift_hue(double r, double g, double b, double dh, double out[3]) {
  const double maxc = std::max({r, g, b}), minc = std::min({r, g, b});
  double h = 0, s = 0;
  const double v = maxc;
  if (maxc != minc) {
    s = (maxc - minc) / maxc;
    const double rc = (maxc - r) / (maxc - minc), gc = (maxc - g) / (maxc - minc),
                 bc = (maxc - b) / (maxc - minc);
    h = r == maxc ? bc - gc : g == maxc ? 2.0 + rc - bc : 4.0 + gc - rc;
    h = h / 6.0 - std::floor(h / 6.0);
  }
  h = h + dh - std::floor(h + dh);
  const int i = static_cast<int>(h * 6.0) % 6;
  const double f = h * 6.0 - static_cast<int>(h * 6.0);
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const double table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  for (int c = 0; c < 3; ++c) out[c] = table[i][c];
}

TEST(Color, HueMatchesColorsysAndRoundTrips) {
  const Tensor img = to_tensor(random_u8({5, 7, 3}, 11));  // (3, 5, 7) in [0, 1]
  const int64_t n = 35;
  for (double dh : {-0.5, -0.2, 0.0, 0.13, 0.5}) {
    const Tensor out = adjust_hue(img, dh);
    ASSERT_EQ(out.shape(), img.shape());
    for (int64_t i = 0; i < n; ++i) {
      const float* x = img.data_ptr<float>();
      double want[3];
      colorsys_shift_hue(x[i], x[n + i], x[2 * n + i], dh, want);
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(out.data_ptr<float>()[c * n + i], want[c], 1e-5) << "dh " << dh << " px " << i;
    }
  }
  // A half turn twice is the identity (up to float rounding); gray pixels have no hue.
  const Tensor twice = adjust_hue(adjust_hue(img, 0.5), 0.5);
  for (int64_t i = 0; i < 3 * n; ++i)
    EXPECT_NEAR(twice.data_ptr<float>()[i], img.data_ptr<float>()[i], 1e-5);
  Tensor gray = kiln::zeros({1, 2, 3}, kiln::kUInt8);
  for (int i = 0; i < 6; ++i) gray.data_ptr<uint8_t>()[i] = 90;
  EXPECT_TRUE(same(adjust_hue(gray, 0.3), gray));
  EXPECT_THROW(adjust_hue(img, 0.7), kiln::Error);
}

TEST(ToTensorNormalize, ValuesAndLayout) {
  Tensor img = random_u8({3, 4, 3}, 5);
  Tensor t = to_tensor(img);
  ASSERT_EQ(t.shape(), (Shape{3, 3, 4}));
  EXPECT_EQ(t.dtype(), kiln::kFloat32);
  EXPECT_FLOAT_EQ(t.data_ptr<float>()[(2 * 3 + 1) * 4 + 3], px(img, 1, 3, 2) / 255.0f);
  Tensor n = normalize(t, {0.5, 0.4, 0.3}, {0.2, 0.25, 0.5});
  EXPECT_NEAR(n.data_ptr<float>()[(1 * 3 + 2) * 4 + 0], (px(img, 2, 0, 1) / 255.0 - 0.4) / 0.25,
              1e-6);
  EXPECT_THROW(normalize(t, {0.5, 0.5}, {1.0}), kiln::ShapeError);
  EXPECT_THROW(normalize(img, {0.5}, {1.0}), kiln::TypeError);
  EXPECT_THROW(to_tensor(t), kiln::TypeError);
}

TEST(Compose, SeededPipelineIsDeterministicAcrossThreads) {
  auto tf = compose({random_crop(24, 24, 2), random_horizontal_flip(0.5),
                     random_affine(15, 0.1, 0.9, 1.1), color_jitter(0.3, 0.3, 0.3), to_tensor(),
                     normalize_by({0.5}, {0.25})});
  EXPECT_NE(tf->repr().find("RandomCrop(size=(24, 24), padding=2)"), std::string::npos);
  Tensor img = random_u8({24, 24, 3}, 6);
  const int n = 8;
  std::vector<Tensor> serial;
  for (int i = 0; i < n; ++i) serial.push_back(tf->apply(img, sample_seed(42, i, 0)));
  // Different samples get different augmentations; the same seed gives the same output.
  EXPECT_FALSE(same(serial[0], serial[1]));
  EXPECT_TRUE(same(serial[3], tf->apply(img, sample_seed(42, 3, 0))));
  EXPECT_FALSE(same(serial[3], tf->apply(img, sample_seed(42, 3, 1))));  // another epoch
  // The same samples computed on 4 threads in reverse order.
  std::vector<Tensor> threaded(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = n - 1 - t; i >= 0; i -= 4) threaded[i] = tf->apply(img, sample_seed(42, i, 0));
    });
  for (auto& th : threads) th.join();
  for (int i = 0; i < n; ++i) EXPECT_TRUE(same(serial[i], threaded[i])) << "sample " << i;
}

// A user transform overrides the Tensor signature and composes with the built-in ones; the seeded
// apply(image, seed) convenience draws from Rng(seed).
class AddRandomLevel : public Transform {
 public:
  using Transform::apply;
  Tensor apply(const Tensor& image, Rng& rng) const override {
    return adjust_brightness(image, 1.0 + static_cast<double>(rng.randint(0, 1)));
  }
  std::string repr() const override { return "AddRandomLevel()"; }
};

TEST(Compose, CustomTransformTakesAndReturnsTensors) {
  const Tensor img = kiln::full({2, 3, 1}, 40.0, kiln::kUInt8);
  auto custom = std::make_shared<AddRandomLevel>();
  auto tf = compose({custom, to_tensor()});
  EXPECT_EQ(tf->repr(), "Compose(AddRandomLevel(), ToTensor())");
  for (uint64_t seed = 0; seed < 4; ++seed) {
    Rng rng(seed);
    const int want = rng.randint(0, 1) == 1 ? 80 : 40;
    const Tensor raw = custom->apply(img, seed);
    ASSERT_EQ(raw.dtype(), kiln::kUInt8);
    EXPECT_EQ(raw.data_ptr<uint8_t>()[5], want) << "seed " << seed;
    const Tensor out = tf->apply(img, seed);
    ASSERT_EQ(out.dtype(), kiln::kFloat32);
    ASSERT_EQ(out.shape(), (Shape{1, 2, 3}));
    EXPECT_FALSE(out.requires_grad());
    EXPECT_FLOAT_EQ(out.data_ptr<float>()[5], want / 255.0f) << "seed " << seed;
  }
}
