// Fuzzing the ONNX reader with damaged copies of real models: every truncated prefix and thousands
// of random byte flips, insertions and deletions (seeded). The reader must return a summary or
// throw kiln::IOError, never crash, hang or throw anything else. Run under ASan + UBSan too
// (-DKILN_SANITIZE=ON). KILN_FUZZ_ITERATIONS scales the random rounds (default 400 per model).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "kiln/onnx/reader.h"
#include "ort_runner.h"

namespace kiln::onnx {
namespace {

namespace fs = std::filesystem;

// Models of different shapes: old IR with initializers, subgraphs, sequences, strings, many nodes.
const char* kModels[] = {
    "pytorch-operator/test_operator_conv/model.onnx",
    "pytorch-converted/test_Linear/model.onnx",
    "node/test_if/model.onnx",
    "node/test_loop13_seq/model.onnx",
    "node/test_layer_normalization_3d_axis_negative_3_epsilon_expanded/model.onnx",
    "simple/test_strnorm_model_monday_casesensintive_lower/model.onnx",
    "node/test_lstm_with_peepholes/model.onnx",
    "node/test_adam/model.onnx",
};

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

int iterations() {
  const char* env = std::getenv("KILN_FUZZ_ITERATIONS");
  return env ? std::max(1, std::atoi(env)) : 400;
}

struct Outcome {
  int parsed = 0;
  int rejected = 0;
};

// Inspects `bytes`; a summary must also render. Records whether it parsed. Fails the test on any
// exception other than kiln::IOError.
void inspect_survives(std::span<const std::byte> bytes, const std::string& what, Outcome& o) {
  try {
    const ModelSummary s = inspect_model_bytes(bytes, "fuzz.onnx");
    (void)format_summary(s);
    (void)summary_to_json(s);
    ++o.parsed;
  } catch (const IOError& e) {
    ASSERT_EQ(std::string(e.what()).rfind("fuzz.onnx: ", 0), 0u) << e.what();
    ++o.rejected;
  } catch (const std::exception& e) {
    FAIL() << what << ": unexpected " << typeid(e).name() << ": " << e.what();
  }
}

// One random damage: overwrite 1..8 bytes, flip one bit, insert or delete a byte run.
std::vector<std::byte> mutate(std::vector<std::byte> b, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto random_byte = [&] { return static_cast<std::byte>(pick(256)); };
  switch (pick(5)) {
    case 0:
      for (size_t k = 0, n = 1 + pick(8); k < n; ++k) b[pick(b.size())] = random_byte();
      break;
    case 1:
      b[pick(b.size())] ^= static_cast<std::byte>(1u << pick(8));
      break;
    case 2: {
      const size_t at = pick(b.size() + 1), n = 1 + pick(16);
      for (size_t k = 0; k < n; ++k) b.insert(b.begin() + at, random_byte());
      break;
    }
    case 3: {
      const size_t at = pick(b.size()), n = std::min(b.size() - at, 1 + pick(16));
      b.erase(b.begin() + at, b.begin() + at + n);
      break;
    }
    default:  // a plausible-looking huge varint (length or dim) at a random spot
      for (size_t k = 0, at = pick(b.size()); k < 9 && at + k < b.size(); ++k) {
        b[at + k] = static_cast<std::byte>(k < 8 ? 0xFF : 0x01);
      }
  }
  return b;
}

TEST(OnnxReaderFuzz, EveryTruncatedPrefixIsRejectedOrParsed) {
  for (const char* model : kModels) {
    const auto bytes = read_bytes(test::onnx_testdata_dir() + "/" + model);
    ASSERT_FALSE(bytes.empty()) << model;
    Outcome o;
    for (size_t n = 0; n < bytes.size(); ++n) {
      inspect_survives(std::span(bytes).first(n), fmt::format("{} prefix {}", model, n), o);
    }
    EXPECT_GT(o.rejected, 0) << model;
  }
}

TEST(OnnxReaderFuzz, RandomDamageIsRejectedOrParsed) {
  std::mt19937_64 rng(20240501);
  for (const char* model : kModels) {
    const auto bytes = read_bytes(test::onnx_testdata_dir() + "/" + model);
    Outcome o;
    for (int i = 0; i < iterations(); ++i) {
      const auto damaged = mutate(bytes, rng);
      inspect_survives(damaged, fmt::format("{} mutation {}", model, i), o);
    }
    // Both outcomes must occur, or the mutations are not exercising the reader.
    EXPECT_GT(o.parsed, 0) << model;
    EXPECT_GT(o.rejected, 0) << model;
  }
}

TEST(OnnxReaderFuzz, RandomBytesAreRejected) {
  std::mt19937_64 rng(7);
  Outcome o;
  for (int i = 0; i < iterations() * 4; ++i) {
    std::vector<std::byte> b(std::uniform_int_distribution<size_t>(1, 256)(rng));
    for (auto& x : b) x = static_cast<std::byte>(rng());
    inspect_survives(b, fmt::format("random {}", i), o);
  }
  EXPECT_GT(o.rejected, o.parsed * 10);
}

// onnx::checker and shape inference run on damaged models that still parse (`kiln inspect
// --check`): they must report, not crash.
TEST(OnnxReaderFuzz, CheckerSurvivesDamagedModels) {
  std::mt19937_64 rng(99);
  const fs::path file = fs::temp_directory_path() / fmt::format("kiln_fuzz_{}.onnx", ::getpid());
  int checked = 0;
  for (const char* model : kModels) {
    const auto bytes = read_bytes(test::onnx_testdata_dir() + "/" + model);
    for (int i = 0; i < iterations() / 4; ++i) {
      const auto damaged = mutate(bytes, rng);
      try {
        inspect_model_bytes(damaged, "fuzz.onnx");
      } catch (const IOError&) {
        continue;  // the checker never sees files the reader rejects
      }
      std::ofstream(file, std::ios::binary)
          .write(reinterpret_cast<const char*>(damaged.data()),
                 static_cast<std::streamsize>(damaged.size()));
      EXPECT_NO_THROW(check_model(file.string())) << model << " mutation " << i;
      ++checked;
    }
  }
  fs::remove(file);
  EXPECT_GT(checked, 0);
}

TEST(OnnxReaderFuzz, TensorProtoReaderSurvivesDamage) {
  std::mt19937_64 rng(3);
  const auto bytes =
      read_bytes(test::onnx_testdata_dir() + "/node/test_abs/test_data_set_0/input_0.pb");
  const fs::path file = fs::temp_directory_path() / fmt::format("kiln_fuzz_{}.pb", ::getpid());
  for (int i = 0; i < iterations(); ++i) {
    const auto damaged = i < static_cast<int>(bytes.size())
                             ? std::vector<std::byte>(bytes.begin(), bytes.begin() + i)
                             : mutate(bytes, rng);
    std::ofstream(file, std::ios::binary)
        .write(reinterpret_cast<const char*>(damaged.data()),
               static_cast<std::streamsize>(damaged.size()));
    try {
      const TensorData t = read_tensor_proto(file.string());
      EXPECT_EQ(static_cast<int64_t>(t.data.size()),
                t.numel() * static_cast<int64_t>(element_size(t.dtype)));
    } catch (const IOError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "mutation " << i << ": unexpected " << e.what();
    }
  }
  fs::remove(file);
}

}  // namespace
}  // namespace kiln::onnx
