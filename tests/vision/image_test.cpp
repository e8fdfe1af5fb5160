// PNG / JPEG decode round trips and corrupt-file errors (kiln/vision/image.h).
#include "kiln/vision/image.h"

#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/vision/transforms.h"

namespace fs = std::filesystem;
using kiln::Tensor;
using namespace kiln::vision;

namespace {

// A seeded (H, W, C) uint8 image with every byte value likely to appear.
Tensor random_image(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  kiln::Generator gen(seed);
  return kiln::randint(0, 256, {h, w, c}, kiln::kUInt8, &gen);
}

// A smooth image (gradients plus a soft blob): what JPEG is designed for, so the error is small.
Tensor smooth_image(int64_t h, int64_t w, int64_t c) {
  Tensor img = kiln::zeros({h, w, c}, kiln::kUInt8);
  uint8_t* p = img.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k) {
        double v = 40 + 120.0 * x / w + 60.0 * y / h +
                   50 * std::exp(-((x - w / 2.0) * (x - w / 2.0) + (y - h / 3.0) * (y - h / 3.0)) /
                                 (0.1 * w * h)) +
                   10 * k;
        p[(y * w + x) * c + k] = static_cast<uint8_t>(std::lround(std::min(v, 255.0)));
      }
  return img;
}

std::string temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "kiln_test_vision_image";
  fs::create_directories(dir);
  return (dir / name).string();
}

void write_raw(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

bool equal_pixels(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor x = a.contiguous(), y = b.contiguous();
  return std::equal(x.data_ptr<uint8_t>(), x.data_ptr<uint8_t>() + x.numel(),
                    y.data_ptr<uint8_t>());
}

// Encodes a PNG of any color type / bit depth with libpng directly (rows given as raw bytes).
std::vector<uint8_t> raw_png(uint32_t w, uint32_t h, int bit_depth, int color_type,
                             const std::vector<std::vector<uint8_t>>& rows,
                             const std::vector<png_color>& palette = {}) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep d, size_t n) {
        auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        v->insert(v->end(), d, d + n);
      },
      [](png_structp) {});
  png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  std::vector<png_bytep> ptrs;
  for (const auto& r : rows) ptrs.push_back(const_cast<png_bytep>(r.data()));
  png_set_rows(png, info, ptrs.data());
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

}  // namespace

TEST(ImagePng, RoundTripIsExactForGrayAndRgb) {
  for (int64_t c : {1, 3}) {
    Tensor img = random_image(17, 23, c, 7 + c);
    std::string path = temp_path("rt_" + std::to_string(c) + ".png");
    write_png(path, img);
    Tensor back = read_image(path);
    EXPECT_TRUE(equal_pixels(img, back)) << "channels " << c;
  }
}

TEST(ImagePng, ColorModesConvert) {
  Tensor rgb = random_image(5, 6, 3, 3);
  std::vector<uint8_t> bytes = encode_png(rgb);
  Tensor gray = decode_image(bytes, "mem.png", ColorMode::Gray);
  ASSERT_EQ(gray.shape(), (kiln::Shape{5, 6, 1}));
  const uint8_t* p = rgb.data_ptr<uint8_t>();
  // BT.601 luma, rounded: pixel 0 by hand.
  EXPECT_EQ(gray.data_ptr<uint8_t>()[0], (299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
  Tensor g1 = random_image(4, 4, 1, 9);
  Tensor as_rgb = decode_image(encode_png(g1), "g.png", ColorMode::RGB);
  ASSERT_EQ(as_rgb.shape(), (kiln::Shape{4, 4, 3}));
  for (int64_t i = 0; i < 16; ++i)
    for (int k = 0; k < 3; ++k)
      EXPECT_EQ(as_rgb.data_ptr<uint8_t>()[i * 3 + k], g1.data_ptr<uint8_t>()[i]);
}

TEST(ImagePng, PaletteAlphaAnd16BitAreConverted) {
  // Palette: 2x2 indices into three colours -> RGB.
  std::vector<png_color> pal = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
  Tensor p = decode_image(raw_png(2, 2, 8, PNG_COLOR_TYPE_PALETTE, {{0, 1}, {2, 0}}, pal), "pal");
  ASSERT_EQ(p.shape(), (kiln::Shape{2, 2, 3}));
  const uint8_t want_pal[] = {10, 20, 30, 200, 100, 0, 1, 2, 3, 10, 20, 30};
  EXPECT_TRUE(std::equal(want_pal, want_pal + 12, p.data_ptr<uint8_t>()));

  // RGBA: alpha dropped, colour kept as stored.
  Tensor a = decode_image(raw_png(2, 1, 8, PNG_COLOR_TYPE_RGBA, {{1, 2, 3, 0, 4, 5, 6, 255}}), "a");
  ASSERT_EQ(a.shape(), (kiln::Shape{1, 2, 3}));
  const uint8_t want_a[] = {1, 2, 3, 4, 5, 6};
  EXPECT_TRUE(std::equal(want_a, want_a + 6, a.data_ptr<uint8_t>()));

  // Gray + alpha -> gray.
  Tensor ga = decode_image(raw_png(2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, {{77, 0, 99, 255}}), "ga");
  ASSERT_EQ(ga.shape(), (kiln::Shape{1, 2, 1}));
  EXPECT_EQ(ga.data_ptr<uint8_t>()[0], 77);
  EXPECT_EQ(ga.data_ptr<uint8_t>()[1], 99);

  // 16-bit gray (big-endian samples): multiples of 257 map exactly to v / 257.
  Tensor g16 =
      decode_image(raw_png(3, 1, 16, PNG_COLOR_TYPE_GRAY, {{0, 0, 0x80, 0x80, 0xFF, 0xFF}}), "g16");
  ASSERT_EQ(g16.shape(), (kiln::Shape{1, 3, 1}));
  EXPECT_EQ(g16.data_ptr<uint8_t>()[0], 0);
  EXPECT_EQ(g16.data_ptr<uint8_t>()[1], 128);
  EXPECT_EQ(g16.data_ptr<uint8_t>()[2], 255);

  // 1-bit gray expands to 0 / 255.
  Tensor g1 = decode_image(raw_png(8, 1, 1, PNG_COLOR_TYPE_GRAY, {{0b10100000}}), "g1");
  ASSERT_EQ(g1.shape(), (kiln::Shape{1, 8, 1}));
  EXPECT_EQ(g1.data_ptr<uint8_t>()[0], 255);
  EXPECT_EQ(g1.data_ptr<uint8_t>()[1], 0);
  EXPECT_EQ(g1.data_ptr<uint8_t>()[2], 255);
}

TEST(ImageJpeg, RoundTripErrorIsBounded) {
  for (int64_t c : {1, 3}) {
    Tensor img = smooth_image(32, 40, c);
    std::string path = temp_path("rt_" + std::to_string(c) + ".jpg");
    write_jpeg(path, img, 95);
    Tensor back = read_image(path);
    ASSERT_EQ(back.shape(), img.shape());
    double sum_abs = 0, max_abs = 0;
    for (int64_t i = 0; i < img.numel(); ++i) {
      double d = std::abs(double(img.data_ptr<uint8_t>()[i]) - back.data_ptr<uint8_t>()[i]);
      sum_abs += d;
      max_abs = std::max(max_abs, d);
    }
    // Quality 95 on a smooth image: quantisation plus (for RGB) 4:2:0 chroma subsampling and
    // YCbCr rounding keep the mean error near 1 level and no pixel far off.
    EXPECT_LT(sum_abs / img.numel(), 2.0) << "channels " << c;
    EXPECT_LE(max_abs, 12.0) << "channels " << c;
  }
}

TEST(ImageErrors, TruncatedPngNamesTheFile) {
  std::vector<uint8_t> bytes = encode_png(random_image(20, 20, 3, 1));
  bytes.resize(bytes.size() / 2);
  std::string path = temp_path("truncated.png");
  write_raw(path, bytes);
  try {
    read_image(path);
    FAIL() << "expected IOError";
  } catch (const kiln::IOError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("PNG"), std::string::npos) << e.what();
  }
}

TEST(ImageErrors, TruncatedJpegNamesTheFile) {
  std::vector<uint8_t> bytes = encode_jpeg(smooth_image(32, 32, 3), 90);
  bytes.resize(bytes.size() * 2 / 3);
  std::string path = temp_path("truncated.jpg");
  write_raw(path, bytes);
  try {
    read_image(path);
    FAIL() << "expected IOError";
  } catch (const kiln::IOError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("JPEG"), std::string::npos) << e.what();
  }
}

TEST(ImageErrors, CorruptBodiesAndGarbageThrow) {
  // Flipped bytes in the compressed PNG data break a CRC or the zlib stream.
  std::vector<uint8_t> png = encode_png(random_image(16, 16, 1, 5));
  for (size_t i = 40; i < png.size() - 20; i += 7) png[i] ^= 0x5A;
  EXPECT_THROW(decode_image(png, "flipped.png"), kiln::IOError);
  // A JPEG cut right after its header (no scan data).
  std::vector<uint8_t> jpg = encode_jpeg(smooth_image(16, 16, 3), 80);
  jpg.resize(200);
  EXPECT_THROW(decode_image(jpg, "header_only.jpg"), kiln::IOError);
  // Not an image at all, and an empty file.
  std::string garbage = temp_path("garbage.png");
  write_raw(garbage, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  try {
    read_image(garbage);
    FAIL() << "expected IOError";
  } catch (const kiln::IOError& e) {
    EXPECT_NE(std::string(e.what()).find(garbage), std::string::npos) << e.what();
  }
  EXPECT_THROW(decode_image({}, "empty"), kiln::IOError);
  EXPECT_THROW(read_image(temp_path("does_not_exist.png")), kiln::IOError);
}

TEST(ImageErrors, EncodersRejectBadShapes) {
  EXPECT_THROW(encode_png(kiln::zeros({4, 4, 2}, kiln::kUInt8)), kiln::ShapeError);
  EXPECT_THROW(encode_png(kiln::zeros({4, 4, 3}, kiln::kFloat32)), kiln::TypeError);
  EXPECT_THROW(encode_jpeg(random_image(4, 4, 3, 1), 0), kiln::Error);
}

// Issue 17, one public tensor type: vision hands out plain kiln::Tensors (uint8 (H, W, C) images,
// float32 (C, H, W) after to_tensor), leaves with no gradient, sharing values where nothing
// changes, and reports an undefined Tensor as an error instead of crashing.
TEST(ImageApi, HandsOutPlainTensors) {
  const std::string path = temp_path("api.png");
  write_png(path, random_image(6, 5, 3, 21));
  const Tensor img = read_image(path, ColorMode::RGB);
  EXPECT_EQ(img.dtype(), kiln::kUInt8);
  EXPECT_EQ(img.shape(), (kiln::Shape{6, 5, 3}));
  EXPECT_TRUE(img.is_contiguous());
  EXPECT_TRUE(img.is_leaf());
  EXPECT_FALSE(img.requires_grad());

  const Tensor gray = to_gray(img);
  EXPECT_EQ(gray.shape(), (kiln::Shape{6, 5, 1}));
  EXPECT_EQ(gray.dtype(), kiln::kUInt8);
  // Already gray: the same values come back, not a copy.
  EXPECT_EQ(to_gray(gray).data_ptr<uint8_t>(), gray.data_ptr<uint8_t>());

  const Tensor x = to_tensor(img);
  EXPECT_EQ(x.dtype(), kiln::kFloat32);
  EXPECT_EQ(x.shape(), (kiln::Shape{3, 6, 5}));
  EXPECT_FALSE(x.requires_grad());
  EXPECT_EQ(resize(img, 4, 4).dtype(), kiln::kUInt8);
  EXPECT_EQ(resize(img, 4, 4).shape(), (kiln::Shape{4, 4, 3}));

  // Transforms are data preparation: even a float input that requires grad gives a result with
  // no autograd history.
  Tensor xg = x.detach().requires_grad_();
  const Tensor n = normalize(xg, {0.5}, {0.25});
  EXPECT_EQ(n.shape(), (kiln::Shape{3, 6, 5}));
  EXPECT_FALSE(n.requires_grad());
  EXPECT_TRUE(n.is_leaf());

  EXPECT_THROW(check_image(Tensor(), "test"), kiln::TypeError);
  EXPECT_THROW(to_tensor(Tensor()), kiln::TypeError);
  EXPECT_THROW(resize(Tensor(), 2, 2), kiln::ShapeError);
}
