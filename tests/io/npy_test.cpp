// NumPy .npy files: every dtype round-trips through save_npy / load_npy, and corrupt or truncated
// files are an IOError, never a crash.
#include "kiln/io/npy.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/random.h"
#include "tensor/test_util.h"

namespace kiln {
namespace {

TEST(Npy, RoundTripsEveryDtype) {
  std::string dir = ::testing::TempDir();
  for (DType t : {kFloat32, kFloat64, kInt64, kInt32, kUInt8, kBool}) {
    Tensor a = arange(0, 12, 1, kInt64).to(t).view({3, 4});
    std::string path = dir + "/rt.npy";
    save_npy(a.transpose(0, 1), path);  // a strided view: written in C order
    Tensor b = load_npy(path);
    EXPECT_EQ(b.dtype(), t);
    EXPECT_TRUE(b.is_contiguous());
    EXPECT_FALSE(b.requires_grad());
    EXPECT_TRUE(testing::all_close(b.data(), a.transpose(0, 1).data(), {0, 0}));
  }
}

TEST(Npy, SavingAnUndefinedTensorThrowsNamingTheFile) {
  const std::string path = ::testing::TempDir() + "/undefined.npy";
  try {
    save_npy(Tensor(), path);
    FAIL() << "save_npy of an undefined tensor must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("undefined.npy"), std::string::npos) << e.what();
  }
}

TEST(Npy, CorruptFilesGiveIOErrorNotACrash) {
  std::string path = ::testing::TempDir() + "/good.npy";
  save_npy(ones({50, 4}), path);
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Generator g(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::string mutated = bytes;
    uint64_t r = Generator::hash(7, trial);
    if (trial % 2 == 0) {
      mutated.resize(r % bytes.size());  // truncation
    } else {
      for (int k = 0; k < 4; ++k)
        mutated[Generator::hash(trial, k) % 128] = static_cast<char>(Generator::hash(k, trial));
    }
    std::string bad = ::testing::TempDir() + "/bad.npy";
    std::ofstream(bad, std::ios::binary) << mutated;
    try {
      Tensor a = load_npy(bad);
      EXPECT_LE(a.data().nbytes(), bytes.size());
    } catch (const IOError&) {
    }
  }
}

}  // namespace
}  // namespace kiln
