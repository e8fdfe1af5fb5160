// safetensors reader / writer: round trips, a hand-built reference file, every documented
// rejection, atomic writes, and a fuzz (all truncations + seeded random byte flips) that must only
// ever throw kiln::IOError. Run it under ASan + UBSan too (-DKILN_SANITIZE=ON);
// KILN_FUZZ_ITERATIONS scales it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/io/json.h"
#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// A path in this run's fresh temporary directory (tests/test_main.cpp removes it on exit).
std::string temp_path(const std::string& name) {
  const fs::path p = fs::path(::testing::TempDir()) / name;
  fs::create_directories(p.parent_path());
  return p.string();
}

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s;
}

// A file from a header text and data bytes, as any writer would lay it out.
std::string make_file(const std::string& header, const std::string& data) {
  return u64le(header.size()) + header + data;
}

std::string f32_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

void expect_rejected(const std::string& bytes, const std::string& reason) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
    ADD_FAILURE() << "accepted a file that should fail with: " << reason;
  } catch (const IOError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << "expected '" << reason << "' in: " << msg;
  }
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  NamedTensorList in = {
      {"f32", tensor({1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f}, {2, 3})},
      {"f64", tensor({1.0, 2.0}, {2})},
      {"i64", tensor({1, -2, 3}, {3})},
      {"i32", tensor({4, 5}, {2}).to(kInt32)},
      {"u8", tensor({0, 255}, {2}).to(kUInt8)},
      {"b", tensor({0, 1, 1}, {3}).to(kBool)},
      {"scalar", scalar_tensor(3.0, kFloat64)},
      {"empty", zeros({0, 4})},
      {"strided", tensor({1.f, 2.f, 3.f, 4.f}, {2, 2}).t()},  // written contiguous
  };
  const std::string path = temp_path("roundtrip.safetensors");
  save_safetensors(path, in, {{"epoch", "3"}, {"quote\"key", "line\nbreak"}});
  SafetensorsFile out = load_safetensors(path);
  ASSERT_EQ(out.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.tensors[i].first, in[i].first);
    const Tensor& a = in[i].second;
    const Tensor& b = out.tensors[i].second;
    EXPECT_EQ(a.dtype(), b.dtype()) << in[i].first;
    EXPECT_EQ(a.shape(), b.shape()) << in[i].first;
    EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>()) << in[i].first;
  }
  EXPECT_EQ(out.metadata.at("epoch"), "3");
  EXPECT_EQ(out.metadata.at("quote\"key"), "line\nbreak");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(Safetensors, HeaderIsAlignedStandardJson) {
  std::string bytes = serialize_safetensors({{"w", ones({2, 2})}}, {{"k", "v"}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  json::Value h = json::parse(bytes.substr(8, n));
  EXPECT_EQ(h.at("w").at("dtype").as_string(), "F32");
  EXPECT_EQ(h.at("w").at("data_offsets").at(1).as_int(), 16);
  EXPECT_EQ(h.at("__metadata__").at("k").as_string(), "v");
  EXPECT_EQ(bytes.size(), 8 + n + 16);
}

TEST(Safetensors, ReadsAFileLaidOutByAnotherWriter) {
  // Tensors listed out of offset order, trailing header spaces, as the reference writer may
  // produce.
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"__metadata__":{"format":"pt"},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   )";
  SafetensorsFile f = parse_safetensors(make_file(header, f32_bytes({1.f, 2.f, 3.f})));
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].first, "a");  // offset order
  EXPECT_EQ(f.at("a").to_vector<float>(), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(f.at("b").to_vector<float>(), (std::vector<float>{3.f}));
  EXPECT_EQ(f.metadata.at("format"), "pt");
}

TEST(Safetensors, RejectsCorruptHeadersWithTheReason) {
  const std::string data = f32_bytes({1.f, 2.f});
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"w":{"dtype":)" + dtype + R"(,"shape":)" + shape + R"(,"data_offsets":)" + offsets +
           "}}";
  };
  expect_rejected("abc", "shorter than the 8-byte header length");
  expect_rejected(u64le(1000) + "{}", "header length 1000 is larger than the 2 bytes");
  expect_rejected(u64le(uint64_t{1} << 63) + "{}", "is larger than");
  expect_rejected(make_file("[1]", ""), "must be a JSON object");
  expect_rejected(make_file("{\"w\":", ""), "header: byte");
  expect_rejected(make_file(entry("\"F31\"", "[2]", "[0,8]"), data), "unknown dtype");
  expect_rejected(make_file(entry("\"BF16\"", "[4]", "[0,8]"), data), "not supported by Kiln");
  expect_rejected(make_file(entry("7", "[2]", "[0,8]"), data), "dtype must be a string");
  expect_rejected(make_file(entry("\"F32\"", "[3]", "[0,8]"), data), "does not match the 8 bytes");
  expect_rejected(make_file(entry("\"F32\"", "[-2]", "[0,8]"), data), "non-negative integer");
  expect_rejected(make_file(entry("\"F32\"", "[2.5]", "[0,8]"), data), "non-negative integer");
  expect_rejected(make_file(entry("\"F32\"", "[4611686018427387904,4]", "[0,8]"), data),
                  "too large");
  expect_rejected(
      make_file(entry("\"F32\"", "[0,4611686018427387904,4611686018427387904]", "[0,0]"), ""),
      "too large");
  expect_rejected(make_file(entry("\"F32\"", "[2]", "[0,16]"), data), "run past the data buffer");
  expect_rejected(make_file(entry("\"F32\"", "[2]", "[8,0]"), data), "end before they begin");
  expect_rejected(make_file(entry("\"F32\"", "[2]", "[0]"), data),
                  "data_offsets must be [begin, end]");
  expect_rejected(make_file(entry("\"F32\"", "[2]", "[0,8]"), data + "xx"), "trailing bytes");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2]}})", data),
                  "needs \"dtype\", \"shape\"");
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            data),
                  "overlap");
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data),
                  "leave a hole");
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            data),
                  "duplicate member name");
  expect_rejected(make_file(R"({"__metadata__":{"k":1}})", ""), "must be a string");
  expect_rejected(make_file(R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                            std::string("\x01\x07", 2)),
                  "must be 0 or 1");
}

TEST(Safetensors, LoadNamesMissingAndTruncatedFiles) {
  EXPECT_THROW(load_safetensors(temp_path("does_not_exist.safetensors")), IOError);
  const std::string path = temp_path("truncated.safetensors");
  std::string bytes = serialize_safetensors({{"w", ones({4, 4})}});
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 5));
  try {
    load_safetensors(path);
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("run past the data buffer"), std::string::npos)
        << e.what();
  }
}

TEST(Safetensors, WriterRejectsBadNames) {
  EXPECT_THROW(serialize_safetensors({{"a", ones({1})}, {"a", ones({1})}}), Error);
  EXPECT_THROW(serialize_safetensors({{"__metadata__", ones({1})}}), Error);
  EXPECT_THROW(serialize_safetensors({{"", ones({1})}}), Error);
}

TEST(Safetensors, AtomicWriteKeepsThePreviousFileOnFailure) {
  const std::string path = temp_path("atomic.safetensors");
  save_safetensors(path, {{"w", ones({2})}});
  // A directory squatting on the temp name makes the write fail before the rename.
  fs::create_directories(path + ".tmp");
  EXPECT_THROW(save_safetensors(path, {{"w", zeros({3})}}), IOError);
  fs::remove_all(path + ".tmp");
  EXPECT_EQ(load_safetensors(path).at("w").numel(), 2);
}

int fuzz_iterations() {
  const char* env = std::getenv("KILN_FUZZ_ITERATIONS");
  return env ? std::max(1, std::atoi(env)) : 3000;
}

TEST(SafetensorsFuzz, TruncationsAndByteFlipsOnlyThrowIOError) {
  const std::string good =
      serialize_safetensors({{"a", tensor({1.f, 2.f, 3.f}, {3})},
                             {"b", tensor({1, 2}, {2})},
                             {"c", tensor({0, 1}, {2}).to(kBool)},
                             {"d", zeros({0, 2})},
                             {"e", scalar_tensor(1.0, kFloat64)}},
                            {{"epoch", "1"}, {"history", R"({"loss":[0.5]})"}});
  int parsed = 0, rejected = 0;
  auto attempt = [&](const std::string& bytes) {
    try {
      SafetensorsFile f = parse_safetensors(bytes, "fuzz");
      for (const auto& [n, t] : f.tensors) (void)t.to_vector<double>();  // touch every byte read
      ++parsed;
    } catch (const IOError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-IOError exception: " << typeid(e).name() << ": " << e.what();
    }
  };
  for (size_t n = 0; n < good.size(); ++n) attempt(good.substr(0, n));
  EXPECT_EQ(parsed, 0);  // every strict prefix is missing bytes
  std::mt19937_64 rng(20240611);
  for (int it = 0; it < fuzz_iterations(); ++it) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Bias the damage towards the length and the header, where the parser works.
      const size_t limit = (rng() % 4 == 0) ? b.size() : std::min<size_t>(b.size(), 8 + 160);
      b[rng() % limit] = static_cast<char>(rng() & 0xFF);
    }
    attempt(b);
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(parsed, 0);  // flips inside the data bytes still parse
}

}  // namespace
}  // namespace kiln
