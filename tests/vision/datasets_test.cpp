// Image data sets (kiln/vision/datasets.h): IDX / CIFAR-10 readers on files the tests write,
// corrupt headers, ImageFolder over real PNG/JPEG files, and loader determinism across threads.
#include "kiln/vision/datasets.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "kiln/autograd/functions.h"
#include "kiln/data/dataloader.h"
#include "kiln/tensor/parallel.h"
#include "test_support.h"

namespace fs = std::filesystem;
using kiln::Shape;
using kiln::Tensor;
using namespace kiln::vision;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "kiln_test_vision_datasets" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_raw(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const fs::path& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.string().c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// An IDX file: magic 0 0 type ndim, big-endian dims, then `data`.
std::vector<uint8_t> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                               const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<uint8_t> iota_bytes(size_t n, uint8_t start = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(start + i * 7);
  return v;
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const kiln::IOError& e) {
    return e.what();
  }
  return "<no IOError>";
}

}  // namespace

TEST(Idx, ReadsPlainAndGzipMnistFiles) {
  fs::path dir = temp_dir("idx");
  std::vector<uint8_t> pixels = iota_bytes(3 * 4 * 5);
  write_raw(dir / "images", idx_bytes(0x08, {3, 4, 5}, pixels));
  write_gz(dir / "labels.gz", idx_bytes(0x08, {3}, {7, 0, 9}));
  ImageSet set = load_mnist_idx((dir / "images").string(), (dir / "labels.gz").string());
  ASSERT_EQ(set.images.shape(), (Shape{3, 4, 5}));
  EXPECT_TRUE(std::equal(pixels.begin(), pixels.end(), set.images.data_ptr<uint8_t>()));
  ASSERT_EQ(set.labels.dtype(), kiln::kInt64);
  EXPECT_EQ(set.labels.data_ptr<int64_t>()[0], 7);
  EXPECT_EQ(set.labels.data_ptr<int64_t>()[2], 9);
  // Wider element types are big-endian: int16 0x0102 = 258, -2 = 0xFFFE.
  write_raw(dir / "shorts", idx_bytes(0x0B, {2}, {0x01, 0x02, 0xFF, 0xFE}));
  Tensor s = read_idx((dir / "shorts").string());
  EXPECT_EQ(s.data_ptr<int32_t>()[0], 258);
  EXPECT_EQ(s.data_ptr<int32_t>()[1], -2);
  // A data set over it: items are (1, 4, 5) floats in [0, 1] with int64 scalar targets.
  auto ds = make_image_dataset(set);
  kiln::data::Example e = ds->get(1);
  EXPECT_EQ(e.data.shape(), (Shape{1, 4, 5}));
  EXPECT_FLOAT_EQ(e.data.data_ptr<float>()[3], pixels[20 + 3] / 255.0f);
  EXPECT_EQ(e.target.item<int64_t>(), 0);
}

TEST(Idx, CorruptHeadersGiveClearErrors) {
  fs::path dir = temp_dir("idx_bad");
  auto check = [&](const std::string& name, const std::vector<uint8_t>& bytes,
                   const std::string& phrase) {
    fs::path p = dir / name;
    write_raw(p, bytes);
    std::string msg = error_of([&] { read_idx(p.string()); });
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(phrase), std::string::npos) << msg;
  };
  check("magic", {1, 2, 8, 1, 0, 0, 0, 1, 5}, "bad magic");
  check("type", idx_bytes(0x07, {1}, {5}), "element type 0x07");
  check("short", {0, 0}, "too short");
  check("truncated", idx_bytes(0x08, {2, 3}, {1, 2, 3}), "truncated");
  check("trailing", idx_bytes(0x08, {2}, {1, 2, 3}), "trailing");
  check("dims", {0, 0, 8, 3, 0, 0}, "declares 3 dims");
  check("huge", idx_bytes(0x08, {60000, 28, 28}, {1, 2}), "exceed");
  // Images and labels that disagree.
  write_raw(dir / "i", idx_bytes(0x08, {2, 1, 1}, {1, 2}));
  write_raw(dir / "l", idx_bytes(0x08, {3}, {1, 2, 3}));
  std::string msg = error_of([&] { load_mnist_idx((dir / "i").string(), (dir / "l").string()); });
  EXPECT_NE(msg.find("has 2 images but"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { read_idx((dir / "missing").string()); }).find("cannot open"),
            std::string::npos);
}

TEST(Cifar10, ReadsRecordsAsHwcAndRejectsBadFiles) {
  fs::path dir = temp_dir("cifar");
  std::vector<uint8_t> b;
  for (int i = 0; i < 2; ++i) {
    b.push_back(static_cast<uint8_t>(3 + i * 5));
    std::vector<uint8_t> px = iota_bytes(3072, static_cast<uint8_t>(i * 11));
    b.insert(b.end(), px.begin(), px.end());
  }
  write_raw(dir / "data_batch_1.bin", b);
  ImageSet set = load_cifar10_batch((dir / "data_batch_1.bin").string());
  ASSERT_EQ(set.images.shape(), (Shape{2, 32, 32, 3}));
  EXPECT_EQ(set.labels.data_ptr<int64_t>()[0], 3);
  EXPECT_EQ(set.labels.data_ptr<int64_t>()[1], 8);
  // Image 1, row 2, column 5, channel c = byte 1 + c·1024 + 2·32 + 5 of record 1.
  for (int c = 0; c < 3; ++c)
    EXPECT_EQ(set.images.data_ptr<uint8_t>()[((1 * 32 + 2) * 32 + 5) * 3 + c],
              b[3073 + 1 + c * 1024 + 2 * 32 + 5]);

  std::vector<uint8_t> cut(b.begin(), b.end() - 100);
  write_raw(dir / "cut.bin", cut);
  std::string msg = error_of([&] { load_cifar10_batch((dir / "cut.bin").string()); });
  EXPECT_NE(msg.find("cut.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("whole number"), std::string::npos) << msg;
  b[3073] = 12;
  write_raw(dir / "label.bin", b);
  msg = error_of([&] { load_cifar10_batch((dir / "label.bin").string()); });
  EXPECT_NE(msg.find("record 1 has label 12"), std::string::npos) << msg;
}

TEST(ImageFolder, SortedClassesDecodedImagesAndTransforms) {
  fs::path dir = temp_dir("folder");
  // Classes created out of order; "b" holds a JPEG and a PNG, "a" one PNG; junk is ignored.
  fs::create_directories(dir / "b");
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "empty");
  kiln::Generator gen(3);
  Tensor img0 = kiln::randint(0, 256, {6, 8, 3}, kiln::kUInt8, &gen);
  Tensor img1 = kiln::randint(0, 256, {6, 8, 3}, kiln::kUInt8, &gen);
  Tensor flat = kiln::full({6, 8, 3}, 120.0, kiln::kUInt8);
  write_png((dir / "b" / "x2.png").string(), img1);
  write_jpeg((dir / "b" / "x1.JPG").string(), flat, 95);
  write_png((dir / "a" / "z.png").string(), img0);
  write_raw(dir / "a" / "notes.txt", {'h', 'i'});

  ImageFolder ds(dir.string());
  EXPECT_EQ(ds.classes(), (std::vector<std::string>{"a", "b", "empty"}));
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.labels(), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(fs::path(ds.paths()[1]).filename(), "x1.JPG");
  kiln::data::Example e = ds.get(0);
  ASSERT_EQ(e.data.shape(), (Shape{3, 6, 8}));
  EXPECT_FLOAT_EQ(e.data.data_ptr<float>()[1 * 48 + 2 * 8 + 3],
                  img0.data_ptr<uint8_t>()[(2 * 8 + 3) * 3 + 1] / 255.0f);
  EXPECT_EQ(ds.get(2).target.item<int64_t>(), 1);
  // A flat JPEG decodes to (nearly) its single value.
  EXPECT_NEAR(ds.image(1).data_ptr<uint8_t>()[17], 120, 1);

  ImageFolder gray(dir.string(), {.transform = compose({center_crop_to(4, 4), to_tensor()}),
                                  .color = ColorMode::Gray});
  EXPECT_EQ(gray.get(0).data.shape(), (Shape{1, 4, 4}));

  // A corrupt image inside the folder: the error names that file.
  write_raw(dir / "a" / "broken.png", {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0});
  ImageFolder with_broken(dir.string());
  std::string msg = error_of([&] { with_broken.get(0); });
  EXPECT_NE(msg.find("broken.png"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { ImageFolder((dir / "empty").string()); }).find("no .png"),
            std::string::npos);
}

TEST(ImageFolder, LoaderBatchesAreIdenticalAtOneAndTwoThreads) {
  fs::path dir = temp_dir("folder_loader");
  kiln::Generator gen(5);
  for (int k = 0; k < 3; ++k) {
    fs::create_directories(dir / std::to_string(k));
    for (int i = 0; i < 5; ++i)
      write_png((dir / std::to_string(k) / (std::to_string(i) + ".png")).string(),
                kiln::randint(0, 256, {10, 10, 1}, kiln::kUInt8, &gen));
  }
  auto ds = std::make_shared<ImageFolder>(
      dir.string(),
      ImageDatasetOptions{.transform = compose({random_crop(8, 8, 1), random_horizontal_flip(),
                                                random_rotation(10), to_tensor()}),
                          .seed = 9});
  kiln::testing::ScopedNumThreads scoped(1);
  auto run = [&](int threads, int64_t epoch) {
    scoped.set(threads);
    ds->set_epoch(epoch);
    kiln::data::DataLoader loader(ds, {.batch_size = 4, .shuffle = true, .seed = 1, .prefetch = 2});
    loader.set_epoch(epoch);
    std::vector<Tensor> out;
    for (const kiln::data::Example& b : loader) {
      out.push_back(b.data.clone());
      out.push_back(b.target.clone());
    }
    return out;
  };
  std::vector<Tensor> one = run(1, 0), two = run(2, 0), next = run(2, 1);
  ASSERT_EQ(one.size(), two.size());
  ASSERT_EQ(one.size(), 8u);  // 4 batches of data + target
  EXPECT_EQ(one[0].shape(), (Shape{4, 1, 8, 8}));
  EXPECT_EQ(one[6].shape(), (Shape{3, 1, 8, 8}));  // last batch, 15 = 3·4 + 3
  for (size_t i = 0; i < one.size(); ++i) {
    Tensor a = one[i].to(kiln::kFloat64), b = two[i].to(kiln::kFloat64);
    EXPECT_TRUE(
        std::equal(a.data_ptr<double>(), a.data_ptr<double>() + a.numel(), b.data_ptr<double>()))
        << "batch part " << i;
  }
  Tensor a = one[0].to(kiln::kFloat64), c = next[0].to(kiln::kFloat64);
  EXPECT_FALSE(
      std::equal(a.data_ptr<double>(), a.data_ptr<double>() + a.numel(), c.data_ptr<double>()))
      << "epoch 1 must reshuffle / re-augment";
}

// Issue 17, one public tensor type: the data sets take and hand out kiln::Tensors — uint8
// (H, W, C) images, int64 labels, float32 (C, H, W) items — with no gradient, and an in-memory
// data set shares the caller's values instead of copying them.
TEST(ImageArrayDataset, TakesAndHandsOutTensors) {
  kiln::Generator gen(17);
  const Tensor images = kiln::randint(0, 256, {4, 3, 5, 1}, kiln::kUInt8, &gen);  // (N, H, W, C)
  const Tensor labels = kiln::tensor({2, 0, 1, 2});                               // (N) int64
  ImageArrayDataset ds(images, labels);
  EXPECT_EQ(ds.images().data_ptr<uint8_t>(), images.data_ptr<uint8_t>());
  EXPECT_EQ(ds.labels().data_ptr<int64_t>(), labels.data_ptr<int64_t>());
  const Tensor img = ds.image(2);
  EXPECT_EQ(img.dtype(), kiln::kUInt8);
  EXPECT_EQ(img.shape(), (Shape{3, 5, 1}));
  EXPECT_FALSE(img.requires_grad());
  EXPECT_EQ(img.data_ptr<uint8_t>()[7], images.data_ptr<uint8_t>()[2 * 15 + 7]);
  EXPECT_EQ(ds.label(3), 2);
  const kiln::data::Example e = ds.get(2);
  EXPECT_EQ(e.data.dtype(), kiln::kFloat32);
  EXPECT_EQ(e.data.shape(), (Shape{1, 3, 5}));
  EXPECT_FALSE(e.data.requires_grad());
  EXPECT_EQ(e.target.dtype(), kiln::kInt64);
  EXPECT_THROW(ImageArrayDataset(images, labels.to(kiln::kFloat32)), kiln::TypeError);
  EXPECT_THROW(ImageArrayDataset(Tensor(), labels), kiln::Error);

  // An ImageSet of 3-d Tensors gets its channel dim; the images are still shared.
  const ImageSet set{images.reshape({4, 3, 5}), labels};
  auto made = make_image_dataset(set);
  EXPECT_EQ(made->images().shape(), (Shape{4, 3, 5, 1}));
  EXPECT_EQ(made->images().data_ptr<uint8_t>(), images.data_ptr<uint8_t>());
}
