// Image data sets: ImageFolder, in-memory image arrays, IDX (MNIST) and CIFAR-10 readers.
#include "kiln/vision/datasets.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kiln/tensor/error.h"

namespace kiln::vision {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- ImageDataset

ImageDataset::ImageDataset(ImageDatasetOptions options) : options_(std::move(options)) {
  if (!options_.transform) options_.transform = to_tensor();
}

void ImageDataset::check_index(int64_t i, const char* op) const {
  KILN_CHECK(i >= 0 && i < size(), "{}: index {} out of range for {} items", op, i, size());
}

data::Example ImageDataset::get(int64_t i) const {
  Tensor x = options_.transform->apply(image(i), sample_seed(options_.seed, i, epoch()));
  Array y({}, kInt64);
  y.data<int64_t>()[0] = label(i);
  return data::Example{std::move(x), Tensor(std::move(y)), {}};
}

// ---------------------------------------------------------------- ImageFolder

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, ImageDatasetOptions options)
    : ImageDataset(std::move(options)) {
  std::error_code ec;
  KILN_CHECK_AS(IOError, fs::is_directory(root, ec), "ImageFolder: {} is not a folder", root);
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
  std::sort(classes_.begin(), classes_.end());
  for (size_t k = 0; k < classes_.size(); ++k) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(fs::path(root) / classes_[k]))
      if (entry.is_regular_file() && is_image_file(entry.path()))
        files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      paths_.push_back(std::move(f));
      labels_.push_back(static_cast<int64_t>(k));
    }
  }
  KILN_CHECK_AS(IOError, !paths_.empty(),
                "ImageFolder: {} holds no .png/.jpg/.jpeg image in any class sub-folder ({} "
                "sub-folders)",
                root, classes_.size());
}

Tensor ImageFolder::image(int64_t i) const {
  check_index(i, "ImageFolder");
  return read_image(paths_[i], options().color);
}

int64_t ImageFolder::label(int64_t i) const {
  check_index(i, "ImageFolder");
  return labels_[i];
}

// ---------------------------------------------------------------- ImageArrayDataset

ImageArrayDataset::ImageArrayDataset(Tensor images, Tensor labels, ImageDatasetOptions options)
    : ImageDataset(std::move(options)), images_(std::move(images)), labels_(std::move(labels)) {
  KILN_CHECK(images_.defined() && labels_.defined(),
             "ImageArrayDataset: images and labels must be defined Tensors");
  KILN_CHECK_TYPE(images_.dtype() == kUInt8 && labels_.dtype() == kInt64,
                  "ImageArrayDataset: need uint8 images and int64 labels, got {} and {}",
                  dtype_name(images_.dtype()), dtype_name(labels_.dtype()));
  KILN_CHECK_SHAPE(images_.dim() == 4 && labels_.dim() == 1 && images_.size(0) == labels_.size(0),
                   "ImageArrayDataset: images {} must be (N, H, W, C) and labels {} (N)",
                   images_.shape(), labels_.shape());
  if (!labels_.is_contiguous()) labels_ = Tensor(labels_.data().contiguous());
}

Tensor ImageArrayDataset::image(int64_t i) const {
  check_index(i, "ImageArrayDataset");
  return Tensor(images_.data().select(0, i).contiguous());
}

int64_t ImageArrayDataset::label(int64_t i) const {
  check_index(i, "ImageArrayDataset");
  return labels_.data_ptr<int64_t>()[i];
}

// ---------------------------------------------------------------- IDX

namespace {

// Reads a whole file through zlib (which passes uncompressed files through unchanged).
std::vector<uint8_t> read_maybe_gzip(const std::string& path, const char* op) {
  gzFile f = gzopen(path.c_str(), "rb");
  KILN_CHECK_AS(IOError, f != nullptr, "{}: cannot open {}", op, path);
  struct Close {
    gzFile f;
    ~Close() { gzclose(f); }
  } close{f};
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(1 << 16);
  for (;;) {
    const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw IOError(fmt::format("{}: {}: corrupt gzip data: {}", op, path, msg));
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + n);
  }
  return bytes;
}

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

template <typename Out>
void convert_big_endian(const uint8_t* src, int64_t n, size_t width, Out* dst,
                        bool is_float = false) {
  for (int64_t i = 0; i < n; ++i, src += width) {
    uint64_t v = 0;
    for (size_t b = 0; b < width; ++b) v = (v << 8) | src[b];
    if (is_float && width == 4) {
      float f;
      auto u = static_cast<uint32_t>(v);
      std::memcpy(&f, &u, 4);
      dst[i] = static_cast<Out>(f);
    } else if (is_float) {
      double d;
      std::memcpy(&d, &v, 8);
      dst[i] = static_cast<Out>(d);
    } else if (width == 1) {
      dst[i] = static_cast<Out>(static_cast<int8_t>(v));
    } else if (width == 2) {
      dst[i] = static_cast<Out>(static_cast<int16_t>(v));
    } else {
      dst[i] = static_cast<Out>(static_cast<int32_t>(v));
    }
  }
}

// read_idx's work, on the Array the public functions wrap.
Array read_idx_array(const std::string& path) {
  const std::vector<uint8_t> b = read_maybe_gzip(path, "read_idx");
  KILN_CHECK_AS(IOError, b.size() >= 4, "read_idx: {}: file too short for an IDX header ({} bytes)",
                path, b.size());
  KILN_CHECK_AS(IOError, b[0] == 0 && b[1] == 0,
                "read_idx: {}: bad magic number {:02x}{:02x}{:02x}{:02x} (an IDX file starts with "
                "two zero bytes)",
                path, b[0], b[1], b[2], b[3]);
  const uint8_t type = b[2];
  const int ndim = b[3];
  DType dtype;
  size_t width;
  switch (type) {
    case 0x08:
      dtype = kUInt8, width = 1;
      break;
    case 0x09:
      dtype = kInt32, width = 1;
      break;
    case 0x0B:
      dtype = kInt32, width = 2;
      break;
    case 0x0C:
      dtype = kInt32, width = 4;
      break;
    case 0x0D:
      dtype = kFloat32, width = 4;
      break;
    case 0x0E:
      dtype = kFloat64, width = 8;
      break;
    default:
      throw IOError(fmt::format(
          "read_idx: {}: unknown IDX element type 0x{:02x} (expected 08, 09, 0B, 0C, 0D or 0E)",
          path, type));
  }
  KILN_CHECK_AS(IOError, ndim >= 1 && b.size() >= 4 + 4 * size_t(ndim),
                "read_idx: {}: header declares {} dims but the file has {} bytes", path, ndim,
                b.size());
  Shape shape;
  uint64_t numel = 1;
  for (int d = 0; d < ndim; ++d) {
    shape.push_back(big_endian_u32(b.data() + 4 + 4 * d));
    numel *= static_cast<uint64_t>(shape.back());
    KILN_CHECK_AS(IOError, numel <= b.size(),
                  "read_idx: {}: dims {} exceed the file size ({} bytes)", path, shape, b.size());
  }
  const size_t header = 4 + 4 * size_t(ndim), want = numel * width, have = b.size() - header;
  KILN_CHECK_AS(IOError, have == want,
                "read_idx: {}: dims {} need {} data bytes but the file has {} ({})", path, shape,
                want, have, have < want ? "truncated" : "trailing bytes");
  Array out(shape, dtype);
  const uint8_t* src = b.data() + header;
  const auto n = static_cast<int64_t>(numel);
  switch (dtype) {
    case DType::UInt8:
      std::memcpy(out.data<uint8_t>(), src, numel);
      break;
    case DType::Int32:
      convert_big_endian(src, n, width, out.data<int32_t>());
      break;
    case DType::Float32:
      convert_big_endian(src, n, width, out.data<float>(), true);
      break;
    default:
      convert_big_endian(src, n, width, out.data<double>(), true);
      break;
  }
  return out;
}

}  // namespace

Tensor read_idx(const std::string& path) {
  return Tensor(read_idx_array(path));
}

ImageSet load_mnist_idx(const std::string& images_path, const std::string& labels_path) {
  Array images = read_idx_array(images_path);
  Array labels = read_idx_array(labels_path);
  KILN_CHECK_AS(IOError, images.dtype() == kUInt8 && images.dim() == 3,
                "load_mnist_idx: {}: expected (N, H, W) ubyte images, got {} {}", images_path,
                dtype_name(images.dtype()), images.shape());
  KILN_CHECK_AS(IOError, labels.dtype() == kUInt8 && labels.dim() == 1,
                "load_mnist_idx: {}: expected (N) ubyte labels, got {} {}", labels_path,
                dtype_name(labels.dtype()), labels.shape());
  KILN_CHECK_AS(IOError, images.size(0) == labels.size(0),
                "load_mnist_idx: {} has {} images but {} has {} labels", images_path,
                images.size(0), labels_path, labels.size(0));
  return {Tensor(std::move(images)), Tensor(labels.to(kInt64))};
}

// ---------------------------------------------------------------- CIFAR-10

ImageSet load_cifar10_batch(const std::string& path) {
  constexpr size_t kPixels = 32 * 32, kRecord = 1 + 3 * kPixels;
  std::ifstream f(path, std::ios::binary);
  KILN_CHECK_AS(IOError, f.good(), "load_cifar10_batch: cannot open {}", path);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  KILN_CHECK_AS(IOError, !b.empty() && b.size() % kRecord == 0,
                "load_cifar10_batch: {}: size {} bytes is not a whole number of {}-byte records "
                "(1 label + 3072 pixels)",
                path, b.size(), kRecord);
  const auto n = static_cast<int64_t>(b.size() / kRecord);
  Array images({n, 32, 32, 3}, kUInt8);
  Array labels({n}, kInt64);
  uint8_t* img = images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* rec = b.data() + i * kRecord;
    KILN_CHECK_AS(IOError, rec[0] <= 9,
                  "load_cifar10_batch: {}: record {} has label {} (CIFAR-10 labels are 0..9)", path,
                  i, rec[0]);
    labels.data<int64_t>()[i] = rec[0];
    // Planes R, G, B of 32×32 -> interleaved HWC.
    for (size_t p = 0; p < kPixels; ++p)
      for (size_t c = 0; c < 3; ++c) img[(i * kPixels + p) * 3 + c] = rec[1 + c * kPixels + p];
  }
  return {Tensor(std::move(images)), Tensor(std::move(labels))};
}

// ---------------------------------------------------------------- npm digits

ImageSet digits_as_images(const Digits& digits) {
  KILN_CHECK(digits.images.defined() && digits.labels.defined(),
             "digits_as_images: images and labels must be defined Tensors");
  KILN_CHECK_SHAPE(digits.images.dim() == 2 && digits.images.size(1) == 784,
                   "digits_as_images: expected images (N, 784), got {}", digits.images.shape());
  const int64_t n = digits.images.size(0);
  Array src = digits.images.data().to(kFloat32).contiguous();
  Array out({n, 28, 28, 1}, kUInt8);
  for (int64_t i = 0; i < n * 784; ++i) {
    const float v = std::nearbyint(src.data<float>()[i] * 255.0f);
    out.data<uint8_t>()[i] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
  }
  return {Tensor(std::move(out)), Tensor(digits.labels.data().to(kInt64).contiguous())};
}

std::shared_ptr<ImageArrayDataset> make_image_dataset(const ImageSet& set,
                                                      ImageDatasetOptions options) {
  KILN_CHECK(set.images.defined() && set.labels.defined(),
             "make_image_dataset: images and labels must be defined Tensors");
  Tensor images = set.images;
  if (images.dim() == 3) images = Tensor(images.data().unsqueeze(3));
  return std::make_shared<ImageArrayDataset>(std::move(images), set.labels.to(kInt64),
                                             std::move(options));
}

}  // namespace kiln::vision
