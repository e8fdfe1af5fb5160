// Image transforms. Every kernel works on a float32 planar (C, H, W) copy; uint8 (H, W, C) images
// are converted in and rounded/clamped back out, so both layouts share one implementation. The
// kernels take and return the Arrays inside the public API's Tensors (image_internal.h).
// Legend: C = channels, H/W = height/width, (y, x) = row/column.
#include "kiln/vision/transforms.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>

#include "kiln/tensor/error.h"
#include "kiln/tensor/random.h"
#include "kiln/vision/image_internal.h"

namespace kiln::vision {

// ---------------------------------------------------------------- randomness

double Rng::uniform(double lo, double hi) {
  return lo + (hi - lo) * Generator::uniform(seed_, counter_++);
}

int64_t Rng::randint(int64_t lo, int64_t hi) {
  KILN_CHECK(hi >= lo, "Rng::randint: empty range [{}, {}]", lo, hi);
  const auto span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(Generator::hash(seed_, counter_++) % span);
}

uint64_t sample_seed(uint64_t seed, int64_t index, int64_t epoch) {
  uint64_t s = Generator::hash(seed, static_cast<uint64_t>(epoch));
  return Generator::hash(s, static_cast<uint64_t>(index));
}

namespace {

// ---------------------------------------------------------------- layouts

// True for uint8 (H, W, C), false for float32 (C, H, W); throws for anything else.
bool is_hwc(const Array& image, const char* op) {
  KILN_CHECK_SHAPE(image.defined() && image.dim() == 3,
                   "{}: expected a uint8 (H, W, C) or float32 (C, H, W) image, got shape {}", op,
                   image.defined() ? image.shape() : Shape{});
  KILN_CHECK_TYPE(image.dtype() == kUInt8 || image.dtype() == kFloat32,
                  "{}: expected a uint8 (H, W, C) or float32 (C, H, W) image, got dtype {}", op,
                  dtype_name(image.dtype()));
  const bool hwc = image.dtype() == kUInt8;
  const int64_t h = hwc ? image.size(0) : image.size(1), w = hwc ? image.size(1) : image.size(2);
  KILN_CHECK_SHAPE(h > 0 && w > 0, "{}: empty image of shape {}", op, image.shape());
  return hwc;
}

// A float32 contiguous (C, H, W) copy (or the image itself when already so).
Array to_planar(const Array& image, bool hwc) {
  if (!hwc) return image.contiguous();
  return image.permute({2, 0, 1}).to(kFloat32).contiguous();
}

// Back to the caller's layout: uint8 (H, W, C) values are rounded to nearest and clamped.
Array from_planar(const Array& planar, bool hwc) {
  if (!hwc) return planar;
  const int64_t c = planar.size(0), h = planar.size(1), w = planar.size(2);
  Array out({h, w, c}, kUInt8);
  const float* p = planar.data<float>();
  uint8_t* q = out.data<uint8_t>();
  for (int64_t k = 0; k < c; ++k)
    for (int64_t i = 0; i < h * w; ++i) {
      float v = std::nearbyint(p[k * h * w + i]);
      q[i * c + k] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
    }
  return out;
}

int64_t height(const Array& image, bool hwc) {
  return hwc ? image.size(0) : image.size(1);
}
int64_t width(const Array& image, bool hwc) {
  return hwc ? image.size(1) : image.size(2);
}

// Samples plane `src` (H, W) at real coordinates (y, x) bilinearly; outside reads `fill`.
float sample_bilinear(const float* src, int64_t h, int64_t w, double y, double x, float fill) {
  const double fy = std::floor(y), fx = std::floor(x);
  if (fy < -1 || fx < -1 || fy > h - 1 || fx > w - 1) return fill;
  const auto y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
  const double ly = y - fy, lx = x - fx;
  auto at = [&](int64_t yy, int64_t xx) -> double {
    return (yy < 0 || yy >= h || xx < 0 || xx >= w) ? fill : src[yy * w + xx];
  };
  const double top = (1 - lx) * at(y0, x0) + lx * at(y0, x0 + 1);
  const double bottom = (1 - lx) * at(y0 + 1, x0) + lx * at(y0 + 1, x0 + 1);
  return static_cast<float>((1 - ly) * top + ly * bottom);
}

// Luma (BT.601) of a 3-channel planar image, one value per pixel.
std::vector<float> gray_plane(const Array& planar) {
  const int64_t n = planar.size(1) * planar.size(2);
  const float* p = planar.data<float>();
  std::vector<float> g(n);
  for (int64_t i = 0; i < n; ++i) g[i] = 0.299f * p[i] + 0.587f * p[n + i] + 0.114f * p[2 * n + i];
  return g;
}

// out = clamp(base + factor·(x − base)) per element, base per pixel (or one scalar when size 1).
Array blend(const Array& image, const std::vector<float>& base, double factor, const char* op) {
  const bool hwc = is_hwc(image, op);
  Array p = to_planar(image, hwc).clone();
  const int64_t c = p.size(0), n = p.size(1) * p.size(2);
  const float hi = hwc ? 255.0f : 1.0f, f = static_cast<float>(factor);
  float* q = p.data<float>();
  for (int64_t k = 0; k < c; ++k)
    for (int64_t i = 0; i < n; ++i) {
      const float b = base.size() == 1 ? base[0] : base[i];
      q[k * n + i] = std::clamp(b + f * (q[k * n + i] - b), 0.0f, hi);
    }
  return from_planar(p, hwc);
}

void check_color_channels(const Array& image, bool hwc, const char* op) {
  const int64_t c = hwc ? image.size(2) : image.size(0);
  KILN_CHECK_SHAPE(c == 1 || c == 3, "{}: expected 1 or 3 channels, got shape {}", op,
                   image.shape());
}

// ---------------------------------------------------------------- functional forms on Arrays

Array resize(const Array& image, int64_t out_h, int64_t out_w) {
  const bool hwc = is_hwc(image, "resize");
  KILN_CHECK_SHAPE(out_h > 0 && out_w > 0, "resize: output size must be positive, got ({}, {})",
                   out_h, out_w);
  Array src = to_planar(image, hwc);
  const int64_t c = src.size(0), h = src.size(1), w = src.size(2);
  // Per output row/column: the two source indices and their weights (PyTorch's
  // area_pixel_compute_source_index with align_corners=False, in float32).
  struct Tap {
    int64_t i0, i1;
    float l0, l1;
  };
  auto taps = [](int64_t in, int64_t out) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    std::vector<Tap> t(out);
    for (int64_t o = 0; o < out; ++o) {
      const float real = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
      const auto i0 = static_cast<int64_t>(real);
      const float l1 = std::min(std::max(real - static_cast<float>(i0), 0.0f), 1.0f);
      t[o] = {i0, i0 + (i0 < in - 1 ? 1 : 0), 1.0f - l1, l1};
    }
    return t;
  };
  const std::vector<Tap> ty = taps(h, out_h), tx = taps(w, out_w);
  Array dst({c, out_h, out_w}, kFloat32);
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (int64_t k = 0; k < c; ++k) {
    const float* plane = s + k * h * w;
    for (int64_t oy = 0; oy < out_h; ++oy) {
      const Tap& a = ty[oy];
      for (int64_t ox = 0; ox < out_w; ++ox) {
        const Tap& b = tx[ox];
        d[(k * out_h + oy) * out_w + ox] =
            a.l0 * (b.l0 * plane[a.i0 * w + b.i0] + b.l1 * plane[a.i0 * w + b.i1]) +
            a.l1 * (b.l0 * plane[a.i1 * w + b.i0] + b.l1 * plane[a.i1 * w + b.i1]);
      }
    }
  }
  return from_planar(dst, hwc);
}

Array crop(const Array& image, int64_t top, int64_t left, int64_t h, int64_t w) {
  const bool hwc = is_hwc(image, "crop");
  KILN_CHECK_SHAPE(h > 0 && w > 0, "crop: window size must be positive, got ({}, {})", h, w);
  const int64_t H = height(image, hwc), W = width(image, hwc);
  const int64_t y0 = std::clamp<int64_t>(top, 0, H), y1 = std::clamp<int64_t>(top + h, 0, H);
  const int64_t x0 = std::clamp<int64_t>(left, 0, W), x1 = std::clamp<int64_t>(left + w, 0, W);
  Shape shape = hwc ? Shape{h, w, image.size(2)} : Shape{image.size(0), h, w};
  Array out(shape, image.dtype());
  out.zero_();
  if (y1 > y0 && x1 > x0) {
    const int64_t hd = hwc ? 0 : 1, wd = hd + 1;
    out.slice(hd, y0 - top, y1 - top)
        .slice(wd, x0 - left, x1 - left)
        .copy_(image.slice(hd, y0, y1).slice(wd, x0, x1));
  }
  return out;
}

Array center_crop(const Array& image, int64_t h, int64_t w) {
  const bool hwc = is_hwc(image, "center_crop");
  const int64_t H = height(image, hwc), W = width(image, hwc);
  KILN_CHECK_SHAPE(h > 0 && w > 0 && h <= H && w <= W,
                   "center_crop: window ({}, {}) must fit the image ({}, {})", h, w, H, W);
  // Python's round (half to even), as torchvision.
  const auto top = static_cast<int64_t>(std::nearbyint((H - h) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((W - w) / 2.0));
  return crop(image, top, left, h, w);
}

Array hflip(const Array& image) {
  const bool hwc = is_hwc(image, "hflip");
  const int64_t wd = hwc ? 1 : 2, W = image.size(wd);
  Array out(image.shape(), image.dtype());
  for (int64_t x = 0; x < W; ++x) out.select(wd, x).copy_(image.select(wd, W - 1 - x));
  return out;
}

Array affine(const Array& image, double angle_deg, double tx, double ty, double scale,
             double fill) {
  const bool hwc = is_hwc(image, "affine");
  KILN_CHECK(scale > 0, "affine: scale must be positive, got {}", scale);
  Array src = to_planar(image, hwc);
  const int64_t c = src.size(0), h = src.size(1), w = src.size(2);
  const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  const double a = angle_deg * std::numbers::pi / 180.0, cs = std::cos(a), sn = std::sin(a);
  Array dst({c, h, w}, kFloat32);
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  // Forward map (y down, counter-clockwise on screen): p' = c + t + scale·R(p − c) with
  // R = [[cos, sin], [−sin, cos]]; each output pixel samples the input at the inverse map.
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const double u = (x - cx - tx) / scale, v = (y - cy - ty) / scale;
      const double sx = cx + cs * u - sn * v, sy = cy + sn * u + cs * v;
      for (int64_t k = 0; k < c; ++k)
        d[(k * h + y) * w + x] =
            sample_bilinear(s + k * h * w, h, w, sy, sx, static_cast<float>(fill));
    }
  return from_planar(dst, hwc);
}

Array adjust_brightness(const Array& image, double factor) {
  KILN_CHECK(factor >= 0, "adjust_brightness: factor must be >= 0, got {}", factor);
  return blend(image, {0.0f}, factor, "adjust_brightness");
}

Array adjust_contrast(const Array& image, double factor) {
  KILN_CHECK(factor >= 0, "adjust_contrast: factor must be >= 0, got {}", factor);
  const bool hwc = is_hwc(image, "adjust_contrast");
  check_color_channels(image, hwc, "adjust_contrast");
  Array p = to_planar(image, hwc);
  std::vector<float> g;
  if (p.size(0) == 3) {
    g = gray_plane(p);
  } else {
    g.assign(p.data<float>(), p.data<float>() + p.numel());
  }
  double sum = 0;
  for (float v : g) sum += v;
  return blend(image, {static_cast<float>(sum / static_cast<double>(g.size()))}, factor,
               "adjust_contrast");
}

Array adjust_saturation(const Array& image, double factor) {
  KILN_CHECK(factor >= 0, "adjust_saturation: factor must be >= 0, got {}", factor);
  const bool hwc = is_hwc(image, "adjust_saturation");
  check_color_channels(image, hwc, "adjust_saturation");
  if ((hwc ? image.size(2) : image.size(0)) == 1) return image;
  return blend(image, gray_plane(to_planar(image, hwc)), factor, "adjust_saturation");
}

// torchvision's adjust_hue: RGB -> HSV, h += factor (mod 1), HSV -> RGB, on values scaled to
// [0, 1]; the conversions are torchvision's _rgb2hsv / _hsv2rgb (the same as Python's colorsys).
Array adjust_hue(const Array& image, double factor) {
  KILN_CHECK(factor >= -0.5 && factor <= 0.5, "adjust_hue: factor must be in [-0.5, 0.5], got {}",
             factor);
  const bool hwc = is_hwc(image, "adjust_hue");
  check_color_channels(image, hwc, "adjust_hue");
  if ((hwc ? image.size(2) : image.size(0)) == 1) return image;
  Array p = to_planar(image, hwc).clone();
  const int64_t n = p.size(1) * p.size(2);
  const float scale = hwc ? 255.0f : 1.0f;
  float* r = p.data<float>();
  float* g = r + n;
  float* b = g + n;
  for (int64_t i = 0; i < n; ++i) {
    const float R = r[i] / scale, G = g[i] / scale, B = b[i] / scale;
    const float maxc = std::max({R, G, B}), minc = std::min({R, G, B});
    const float v = maxc, delta = maxc - minc;
    const float sat = maxc > 0 ? delta / maxc : 0.0f;
    float h = 0.0f;
    if (delta > 0) {
      const float rc = (maxc - R) / delta, gc = (maxc - G) / delta, bc = (maxc - B) / delta;
      h = R == maxc ? bc - gc : G == maxc ? 2.0f + rc - bc : 4.0f + gc - rc;
      h = h / 6.0f;
      h -= std::floor(h);
    }
    h += static_cast<float>(factor);
    h -= std::floor(h);
    const float h6 = h * 6.0f;
    const int sector = std::min(static_cast<int>(h6), 5);
    const float f = h6 - static_cast<float>(sector);
    const float pp = v * (1 - sat), q = v * (1 - sat * f), t = v * (1 - sat * (1 - f));
    float o[3];
    switch (sector) {
      case 0:
        o[0] = v;
        o[1] = t;
        o[2] = pp;
        break;
      case 1:
        o[0] = q;
        o[1] = v;
        o[2] = pp;
        break;
      case 2:
        o[0] = pp;
        o[1] = v;
        o[2] = t;
        break;
      case 3:
        o[0] = pp;
        o[1] = q;
        o[2] = v;
        break;
      case 4:
        o[0] = t;
        o[1] = pp;
        o[2] = v;
        break;
      default:
        o[0] = v;
        o[1] = pp;
        o[2] = q;
        break;
    }
    r[i] = std::clamp(o[0], 0.0f, 1.0f) * scale;
    g[i] = std::clamp(o[1], 0.0f, 1.0f) * scale;
    b[i] = std::clamp(o[2], 0.0f, 1.0f) * scale;
  }
  return from_planar(p, hwc);
}

Array normalize(const Array& image, const std::vector<double>& mean,
                const std::vector<double>& std) {
  KILN_CHECK_TYPE(
      image.defined() && image.dtype() == kFloat32 && image.dim() == 3,
      "normalize: expected a float32 (C, H, W) image (apply to_tensor first), got {} {}",
      image.defined() ? dtype_name(image.dtype()) : "undefined",
      image.defined() ? image.shape() : Shape{});
  const int64_t c = image.size(0), n = image.size(1) * image.size(2);
  auto pick = [&](const std::vector<double>& v, const char* what, int64_t k) {
    KILN_CHECK_SHAPE(v.size() == 1 || static_cast<int64_t>(v.size()) == c,
                     "normalize: {} has {} entries but the image has {} channels (need 1 or {})",
                     what, v.size(), c, c);
    return v.size() == 1 ? v[0] : v[k];
  };
  Array src = image.contiguous();
  Array out(image.shape(), kFloat32);
  for (int64_t k = 0; k < c; ++k) {
    const double m = pick(mean, "mean", k), s = pick(std, "std", k);
    KILN_CHECK(s > 0, "normalize: std[{}] must be positive, got {}", k, s);
    const auto mf = static_cast<float>(m), inv = static_cast<float>(1.0 / s);
    for (int64_t i = 0; i < n; ++i)
      out.data<float>()[k * n + i] = (src.data<float>()[k * n + i] - mf) * inv;
  }
  return out;
}

Array to_tensor(const Array& image) {
  KILN_CHECK_TYPE(image.defined() && image.dtype() == kUInt8 && image.dim() == 3,
                  "to_tensor: expected a uint8 (H, W, C) image, got {} {}",
                  image.defined() ? dtype_name(image.dtype()) : "undefined",
                  image.defined() ? image.shape() : Shape{});
  Array p = to_planar(image, true);
  float* q = p.data<float>();
  for (int64_t i = 0; i < p.numel(); ++i) q[i] /= 255.0f;
  return p;
}

}  // namespace

// ---------------------------------------------------------------- functional forms

Tensor resize(const Tensor& image, int64_t out_h, int64_t out_w) {
  return Tensor(resize(array_of(image), out_h, out_w));
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w) {
  return Tensor(crop(array_of(image), top, left, h, w));
}

Tensor center_crop(const Tensor& image, int64_t h, int64_t w) {
  return Tensor(center_crop(array_of(image), h, w));
}

Tensor hflip(const Tensor& image) {
  return Tensor(hflip(array_of(image)));
}

Tensor affine(const Tensor& image, double angle_deg, double tx, double ty, double scale,
              double fill) {
  return Tensor(affine(array_of(image), angle_deg, tx, ty, scale, fill));
}

Tensor adjust_brightness(const Tensor& image, double factor) {
  return Tensor(adjust_brightness(array_of(image), factor));
}

Tensor adjust_contrast(const Tensor& image, double factor) {
  return Tensor(adjust_contrast(array_of(image), factor));
}

Tensor adjust_saturation(const Tensor& image, double factor) {
  return Tensor(adjust_saturation(array_of(image), factor));
}

Tensor adjust_hue(const Tensor& image, double factor) {
  return Tensor(adjust_hue(array_of(image), factor));
}

Tensor normalize(const Tensor& image, const std::vector<double>& mean,
                 const std::vector<double>& std) {
  return Tensor(normalize(array_of(image), mean, std));
}

Tensor to_tensor(const Tensor& image) {
  return Tensor(to_tensor(array_of(image)));
}

// ---------------------------------------------------------------- transform objects

namespace {

class FnTransform : public Transform {
 public:
  using Fn = std::function<Tensor(const Tensor&, Rng&)>;
  FnTransform(std::string repr, Fn fn) : repr_(std::move(repr)), fn_(std::move(fn)) {}
  Tensor apply(const Tensor& image, Rng& rng) const override { return fn_(image, rng); }
  std::string repr() const override { return repr_; }

 private:
  std::string repr_;
  Fn fn_;
};

TransformPtr make(std::string repr, FnTransform::Fn fn) {
  return std::make_shared<FnTransform>(std::move(repr), std::move(fn));
}

}  // namespace

TransformPtr compose(std::vector<TransformPtr> steps) {
  std::string repr = "Compose(";
  for (size_t i = 0; i < steps.size(); ++i) {
    KILN_CHECK(steps[i] != nullptr, "compose: step {} is null", i);
    repr += (i ? ", " : "") + steps[i]->repr();
  }
  repr += ")";
  return make(repr, [steps](const Tensor& image, Rng& rng) {
    Tensor x = image;
    for (const TransformPtr& t : steps) x = t->apply(x, rng);
    return x;
  });
}

TransformPtr resize_to(int64_t h, int64_t w) {
  return make(fmt::format("Resize(size=({}, {}))", h, w),
              [h, w](const Tensor& image, Rng&) { return resize(image, h, w); });
}

TransformPtr center_crop_to(int64_t h, int64_t w) {
  return make(fmt::format("CenterCrop(size=({}, {}))", h, w),
              [h, w](const Tensor& image, Rng&) { return center_crop(image, h, w); });
}

TransformPtr random_crop(int64_t h, int64_t w, int64_t padding) {
  KILN_CHECK(padding >= 0, "random_crop: padding must be >= 0, got {}", padding);
  return make(fmt::format("RandomCrop(size=({}, {}), padding={})", h, w, padding),
              [h, w, padding](const Tensor& image, Rng& rng) {
                const Array a = array_of(image);
                const bool hwc = is_hwc(a, "random_crop");
                const int64_t H = height(a, hwc) + 2 * padding;
                const int64_t W = width(a, hwc) + 2 * padding;
                KILN_CHECK_SHAPE(h <= H && w <= W,
                                 "random_crop: window ({}, {}) is larger than the padded image "
                                 "({}, {})",
                                 h, w, H, W);
                const int64_t top = rng.randint(0, H - h) - padding;
                const int64_t left = rng.randint(0, W - w) - padding;
                return crop(image, top, left, h, w);
              });
}

TransformPtr random_horizontal_flip(double p) {
  return make(fmt::format("RandomHorizontalFlip(p={})", p), [p](const Tensor& image, Rng& rng) {
    return rng.bernoulli(p) ? hflip(image) : image;
  });
}

TransformPtr random_rotation(double degrees, double fill) {
  return make(fmt::format("RandomRotation(degrees={})", degrees),
              [degrees, fill](const Tensor& image, Rng& rng) {
                return affine(image, rng.uniform(-degrees, degrees), 0, 0, 1, fill);
              });
}

TransformPtr random_affine(double degrees, double translate, double scale_min, double scale_max,
                           double fill) {
  KILN_CHECK(scale_min > 0 && scale_max >= scale_min,
             "random_affine: need 0 < scale_min <= scale_max, got [{}, {}]", scale_min, scale_max);
  return make(fmt::format("RandomAffine(degrees={}, translate={}, scale=({}, {}))", degrees,
                          translate, scale_min, scale_max),
              [=](const Tensor& image, Rng& rng) {
                const Array a = array_of(image);
                const bool hwc = is_hwc(a, "random_affine");
                const double angle = rng.uniform(-degrees, degrees);
                const double mx = translate * width(a, hwc), my = translate * height(a, hwc);
                const double tx = rng.uniform(-mx, mx), ty = rng.uniform(-my, my);
                const double s = rng.uniform(scale_min, scale_max);
                return affine(image, angle, tx, ty, s, fill);
              });
}

TransformPtr color_jitter(double brightness, double contrast, double saturation, double hue) {
  KILN_CHECK(brightness >= 0 && contrast >= 0 && saturation >= 0,
             "color_jitter: strengths must be >= 0, got ({}, {}, {})", brightness, contrast,
             saturation);
  KILN_CHECK(hue >= 0 && hue <= 0.5, "color_jitter: hue must be in [0, 0.5], got {}", hue);
  return make(
      fmt::format("ColorJitter(brightness={}, contrast={}, saturation={}, hue={})", brightness,
                  contrast, saturation, hue),
      [=](const Tensor& image, Rng& rng) {
        Tensor x = image;
        if (brightness > 0)
          x = adjust_brightness(x, rng.uniform(std::max(0.0, 1 - brightness), 1 + brightness));
        if (contrast > 0)
          x = adjust_contrast(x, rng.uniform(std::max(0.0, 1 - contrast), 1 + contrast));
        if (saturation > 0)
          x = adjust_saturation(x, rng.uniform(std::max(0.0, 1 - saturation), 1 + saturation));
        if (hue > 0) x = adjust_hue(x, rng.uniform(-hue, hue));
        return x;
      });
}

TransformPtr normalize_by(std::vector<double> mean, std::vector<double> std) {
  return make(fmt::format("Normalize(mean={}, std={})", mean, std),
              [mean, std](const Tensor& image, Rng&) { return normalize(image, mean, std); });
}

TransformPtr to_tensor() {
  return make("ToTensor()", [](const Tensor& image, Rng&) { return to_tensor(image); });
}

}  // namespace kiln::vision
