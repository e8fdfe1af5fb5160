// Corrupt and hostile models given to import_model: hand-built graphs with a cycle, a missing
// input, negative or huge dims, wrong element types, bad attributes, outputs nobody produces and
// unsupported operators each get a clear kiln::Error naming the problem; and a bounded fuzz run
// over mutated real models (KILN_FUZZ_ITERATIONS, default 300 per model) that imports and runs
// whatever still parses. Nothing may crash or throw anything but kiln::Error. Runs under
// ASan + UBSan in CI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include "kiln/autograd/grad_mode.h"
#include "kiln/onnx/import.h"
#include "ort_runner.h"

namespace kiln::onnx {
namespace {

// ---- a tiny protobuf writer for hand-built ModelProtos (field numbers from onnx.proto) ----
struct Pb {
  std::string b;
  Pb& varint(uint64_t v) {
    while (v >= 0x80) {
      b.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    b.push_back(static_cast<char>(v));
    return *this;
  }
  Pb& key(int field, int wire) { return varint(static_cast<uint64_t>(field) << 3 | wire); }
  Pb& i(int field, int64_t v) { return key(field, 0).varint(static_cast<uint64_t>(v)); }
  Pb& s(int field, const std::string& v) {
    key(field, 2).varint(v.size());
    b += v;
    return *this;
  }
  Pb& m(int field, const Pb& msg) { return s(field, msg.b); }
  Pb& f32(int field, float v) {
    key(field, 5);
    char c[4];
    std::memcpy(c, &v, 4);
    b.append(c, 4);
    return *this;
  }
};

// ValueInfoProto: float tensor `name` with dims (negative = symbolic "d").
Pb value(const std::string& name, std::vector<int64_t> dims, int elem = 1) {
  Pb shape;
  for (int64_t d : dims) shape.m(1, d >= 0 ? Pb().i(1, d) : Pb().s(2, "d"));
  return Pb().s(1, name).m(2, Pb().m(1, Pb().i(1, elem).m(2, shape)));
}
Pb node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
        std::vector<Pb> attrs = {}) {
  Pb n;
  for (const auto& x : in) n.s(1, x);
  for (const auto& x : out) n.s(2, x);
  n.s(4, op);
  for (const auto& a : attrs) n.m(5, a);
  return n;
}
Pb tensor(const std::string& name, std::vector<int64_t> dims, int elem, std::vector<float> floats,
          std::string raw = "") {
  Pb t;
  for (int64_t d : dims) t.i(1, d);
  t.i(2, elem);
  for (float f : floats) t.f32(4, f);
  t.s(8, name);
  if (!raw.empty()) t.s(9, raw);
  return t;
}
std::string model(const std::vector<Pb>& nodes, const std::vector<Pb>& inputs,
                  const std::vector<Pb>& outputs, const std::vector<Pb>& inits = {}) {
  Pb g;
  for (const auto& n : nodes) g.m(1, n);
  g.s(2, "g");
  for (const auto& t : inits) g.m(5, t);
  for (const auto& v : inputs) g.m(11, v);
  for (const auto& v : outputs) g.m(12, v);
  return Pb().i(1, 8).m(8, Pb().s(1, "").i(2, 17)).m(7, g).b;
}

// Imports (and, if that works, runs on x) a hand-built model; returns the kiln::Error message.
std::string error_of(const std::string& bytes, const Tensor& x = {}) {
  try {
    auto m = import_model_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), "h.onnx");
    if (x.defined()) {
      NoGradGuard g;
      m->run(std::vector<Tensor>{x});
    }
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a kiln::Error: " << typeid(e).name() << ": " << e.what();
  }
  return "";
}

TEST(ImportHostile, CycleIsNamed) {
  const auto m = model(
      {node("Relu", {"b"}, {"a"}), node("Relu", {"a"}, {"b"}), node("Add", {"x", "a"}, {"y"})},
      {value("x", {2})}, {value("y", {2})});
  EXPECT_NE(error_of(m).find("cycle through 3 node(s)"), std::string::npos) << error_of(m);
}

TEST(ImportHostile, MissingInputIsNamed) {
  const auto m =
      model({node("Add", {"x", "nowhere"}, {"y"})}, {value("x", {2})}, {value("y", {2})});
  EXPECT_NE(error_of(m).find("reads 'nowhere', which is neither a graph input"), std::string::npos)
      << error_of(m);
}

TEST(ImportHostile, OutputNobodyProducesIsNamed) {
  const auto m = model({node("Relu", {"x"}, {"y"})}, {value("x", {2})}, {value("z", {2})});
  EXPECT_NE(error_of(m).find("graph output 'z' is not produced"), std::string::npos);
}

TEST(ImportHostile, ValueProducedTwiceIsNamed) {
  const auto m = model({node("Relu", {"x"}, {"y"}), node("Neg", {"x"}, {"y"})}, {value("x", {2})},
                       {value("y", {2})});
  EXPECT_NE(error_of(m).find("'y' is produced twice"), std::string::npos) << error_of(m);
}

TEST(ImportHostile, NegativeAndHugeInitializerDimsAreRejected) {
  const auto neg = model({node("Add", {"x", "w"}, {"y"})}, {value("x", {2})}, {value("y", {2})},
                         {tensor("w", {-2}, 1, {1, 2})});
  EXPECT_NE(error_of(neg).find("negative dimension -2"), std::string::npos) << error_of(neg);
  const auto huge = model({node("Add", {"x", "w"}, {"y"})}, {value("x", {2})}, {value("y", {2})},
                          {tensor("w", {int64_t{1} << 40, int64_t{1} << 40}, 1, {})});
  EXPECT_NE(error_of(huge).find("overflows"), std::string::npos) << error_of(huge);
  const auto big = model({node("Add", {"x", "w"}, {"y"})}, {value("x", {2})}, {value("y", {2})},
                         {tensor("w", {int64_t{1} << 30}, 1, {1, 2})});
  EXPECT_NE(error_of(big).find("holds 2 values but its dims need 1073741824"), std::string::npos)
      << error_of(big);
}

TEST(ImportHostile, WrongTypesAreNamed) {
  // A raw_data size that does not fit the element type, an unsupported element type (bfloat16),
  // an input of another dtype than declared.
  const auto raw = model({node("Add", {"x", "w"}, {"y"})}, {value("x", {2})}, {value("y", {2})},
                         {tensor("w", {2}, 7, {}, "abc")});
  EXPECT_NE(error_of(raw).find("needs 16 bytes of data but holds 3"), std::string::npos)
      << error_of(raw);
  const auto bf16 =
      model({node("Identity", {"x"}, {"y"})}, {value("x", {2}, 16)}, {value("y", {2})});
  EXPECT_NE(error_of(bf16).find("element type bfloat16, which Kiln does not support"),
            std::string::npos)
      << error_of(bf16);
  const auto ok = model({node("Relu", {"x"}, {"y"})}, {value("x", {-1, 3})}, {value("y", {-1, 3})});
  EXPECT_EQ(error_of(ok, randn({4, 3})), "");
  EXPECT_NE(error_of(ok, randn({4, 3}).to(kFloat64)).find("input 'x' must be float32, got float64"),
            std::string::npos);
  EXPECT_NE(error_of(ok, randn({4, 2})).find("dim 1 must be 3"), std::string::npos);
}

TEST(ImportHostile, BadAttributesAndHugeShapesFailAtTheNode) {
  Pb axis_str = Pb().s(1, "axis").s(4, "zero").i(20, 3);  // a string where an int belongs
  const auto attr = model({node("Softmax", {"x"}, {"y"}, {axis_str})}, {value("x", {2, 3})},
                          {value("y", {2, 3})});
  EXPECT_NE(error_of(attr, randn({2, 3}))
                .find("Softmax node '#0' (opset 17): attribute 'axis' must be an int"),
            std::string::npos)
      << error_of(attr, randn({2, 3}));
  Pb big_shape = tensor("s", {2}, 7, {});
  {
    Pb t;
    t.i(1, 2).i(2, 7).i(7, int64_t{1} << 40).i(7, int64_t{1} << 40).s(8, "s");
    big_shape = t;
  }
  const auto expand = model({node("Expand", {"x", "s"}, {"y"})}, {value("x", {1, 1})},
                            {value("y", {-1, -1})}, {big_shape});
  EXPECT_NE(error_of(expand, randn({1, 1})).find("too large"), std::string::npos)
      << error_of(expand, randn({1, 1}));
  const auto reshape = model({node("Reshape", {"x", "s"}, {"y"})}, {value("x", {1, 1})},
                             {value("y", {-1, -1})}, {big_shape});
  EXPECT_NE(error_of(reshape, randn({1, 1})).find("Reshape node"), std::string::npos);
}

TEST(ImportHostile, UnsupportedOperatorsAreListedAtOnce) {
  const auto m = model(
      {node("SequenceMap", {"x"}, {"a"}), node("Loop", {"a"}, {"b"}), node("Relu", {"b"}, {"y"})},
      {value("x", {2})}, {value("y", {2})});
  EXPECT_EQ(error_of(m),
            "import_model: h.onnx uses operators Kiln does not implement: Loop (opset 17), "
            "SequenceMap (opset 17)");
}

TEST(ImportHostile, SequencesAndStringsReachingTensorOpsAreNamed) {
  // A sequence fed to a tensor op, a string tensor input given a float tensor, a tensor fed to
  // SequenceAt, and positions out of range: each a kiln::Error naming the node and the rule.
  const auto seq = model({node("SequenceConstruct", {"x"}, {"s"}), node("Relu", {"s"}, {"y"})},
                         {value("x", {2})}, {value("y", {2})});
  EXPECT_NE(error_of(seq, randn({2}))
                .find("Relu node '#1' (opset 17): input 0 ('s') is a sequence, but Relu takes "
                      "tensors only"),
            std::string::npos)
      << error_of(seq, randn({2}));
  const auto str =
      model({node("StringNormalizer", {"x"}, {"y"})}, {value("x", {2}, 8)}, {value("y", {2}, 8)});
  EXPECT_NE(error_of(str, randn({2})).find("input 'x' must be a string tensor, got a tensor"),
            std::string::npos)
      << error_of(str, randn({2}));
  const auto at =
      model({node("SequenceAt", {"x", "x"}, {"y"})}, {value("x", {2})}, {value("y", {2})});
  EXPECT_NE(error_of(at, randn({2})).find("input 0 must be a sequence, got a tensor"),
            std::string::npos)
      << error_of(at, randn({2}));
  const auto erase = model({node("SequenceEmpty", {}, {"e"}), node("SequenceErase", {"e"}, {"s"}),
                            node("SequenceLength", {"s"}, {"y"})},
                           {value("x", {2})}, {value("y", {})});
  EXPECT_NE(error_of(erase, randn({2})).find("cannot erase from an empty sequence"),
            std::string::npos)
      << error_of(erase, randn({2}));
  const auto empty = model({node("Optional", {}, {"o"}), node("OptionalGetElement", {"o"}, {"y"})},
                           {value("x", {2})}, {value("y", {2})});
  EXPECT_NE(error_of(empty, randn({2}))
                .find("OptionalGetElement node '#1' (opset 17): the optional "
                      "is empty"),
            std::string::npos)
      << error_of(empty, randn({2}));
  const auto relu = model({node("Optional", {}, {"o"}), node("Relu", {"o"}, {"y"})},
                          {value("x", {2})}, {value("y", {2})});
  EXPECT_NE(error_of(relu, randn({2}))
                .find("input 0 ('o') is an empty optional, but Relu takes "
                      "tensors only"),
            std::string::npos)
      << error_of(relu, randn({2}));
}

TEST(ImportHostile, CastOfANonNumberStringIsNamed) {
  const auto cast = model({node("Cast", {"x"}, {"y"}, {Pb().s(1, "to").i(3, 1).i(20, 2)})},
                          {value("x", {2}, 8)}, {value("y", {2})});
  auto m = import_model_bytes(std::as_bytes(std::span(cast.data(), cast.size())), "h.onnx");
  const auto y = m->run_values({StringTensor{{2}, {"-INF", "2.5e1"}}});
  EXPECT_EQ(std::get<Tensor>(y[0]).to_vector<float>(),
            (std::vector<float>{-std::numeric_limits<float>::infinity(), 25.0f}));
  try {  // a shape that does not match the strings given
    m->run_values({StringTensor{{2}, {"1"}}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input 'x' holds 1 strings but its shape [2]"),
              std::string::npos)
        << e.what();
  }
  try {
    m->run_values({StringTensor{{2}, {"1", "abc"}}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("element 1 ('abc') is not a number"), std::string::npos)
        << e.what();
  }
}

TEST(ImportHostile, GradientNeedsItsAttributes) {
  // ai.onnx.preview.training:Gradient names what it differentiates in attributes xs and y; without
  // y it cannot be wired. With both, d(x * x)/dx = 2x, even inside a NoGradGuard.
  Pb xs = Pb().s(1, "xs").s(9, "x").i(20, 8);  // STRINGS
  Pb y = Pb().s(1, "y").s(4, "p").i(20, 3);    // STRING
  Pb no_y = node("Gradient", {"x"}, {"g"}, {xs});
  no_y.s(7, "ai.onnx.preview.training");
  const auto bad =
      model({node("Mul", {"x", "x"}, {"p"}), no_y}, {value("x", {2})}, {value("g", {2})});
  EXPECT_NE(error_of(bad).find("attributes 'xs' (names) and 'y' (a name) are required"),
            std::string::npos)
      << error_of(bad);
  Pb grad = node("Gradient", {"x"}, {"g"}, {xs, y});
  grad.s(7, "ai.onnx.preview.training");
  const auto ok =
      model({grad, node("Mul", {"x", "x"}, {"p"})}, {value("x", {2})}, {value("g", {2})});
  auto m = import_model_bytes(std::as_bytes(std::span(ok.data(), ok.size())), "h.onnx");
  NoGradGuard no_grad;
  const Tensor x = kiln::from_vector<float>({1.5f, -2.0f}, {2});
  const auto g = m->run(std::vector<Tensor>{x})[0].to_vector<float>();
  EXPECT_EQ(g, (std::vector<float>{3.0f, -4.0f}));
}

// ---- fuzzing real models ----

const char* kFuzzModels[] = {
    "pytorch-operator/test_operator_conv/model.onnx",
    "pytorch-converted/test_Linear/model.onnx",
    "pytorch-converted/test_BatchNorm2d_eval/model.onnx",
    "node/test_lstm_with_peepholes/model.onnx",
    "node/test_reshape_negative_extended_dims/model.onnx",
    "node/test_slice_neg_steps/model.onnx",
    "node/test_resize_upsample_scales_linear/model.onnx",
    "node/test_gather_negative_indices/model.onnx",
};

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  if (!c.empty()) std::memcpy(b.data(), c.data(), c.size());
  return b;
}

std::vector<std::byte> mutate(std::vector<std::byte> b, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  switch (pick(4)) {
    case 0:
      for (size_t k = 0, n = 1 + pick(4); k < n; ++k)
        b[pick(b.size())] = static_cast<std::byte>(pick(256));
      break;
    case 1:
      b[pick(b.size())] ^= static_cast<std::byte>(1u << pick(8));
      break;
    case 2:
      b.resize(pick(b.size()));
      break;
    default:  // a huge varint (a dim, a length or an index) somewhere
      for (size_t k = 0, at = pick(b.size()); k < 9 && at + k < b.size(); ++k)
        b[at + k] = static_cast<std::byte>(k < 8 ? 0xFF : 0x01);
  }
  return b;
}

TEST(ImportHostile, MutatedModelsImportAndRunOrFailCleanly) {
  const char* env = std::getenv("KILN_FUZZ_ITERATIONS");
  const int rounds = env ? std::max(1, std::atoi(env)) : 300;
  std::mt19937_64 rng(20261204);
  int imported = 0, ran = 0, rejected = 0;
  for (const char* name : kFuzzModels) {
    const std::string dir =
        test::onnx_testdata_dir() + "/" + std::string(name).substr(0, std::string(name).rfind('/'));
    const auto bytes = read_bytes(test::onnx_testdata_dir() + "/" + name);
    ASSERT_FALSE(bytes.empty()) << name;
    std::vector<Tensor> inputs;
    for (int k = 0;; ++k) {
      const std::string p = dir + "/test_data_set_0/input_" + std::to_string(k) + ".pb";
      if (!std::ifstream(p).good()) break;
      inputs.push_back(load_tensor_proto(p));
    }
    for (int r = 0; r < rounds; ++r) {
      const auto damaged = mutate(bytes, rng);
      try {
        auto m = import_model_bytes(damaged, "fuzz.onnx");
        ++imported;
        NoGradGuard g;
        m->run(inputs);
        ++ran;
      } catch (const Error&) {
        ++rejected;
      } catch (const std::exception& e) {
        FAIL() << name << " round " << r << ": not a kiln::Error: " << typeid(e).name() << ": "
               << e.what();
      }
    }
  }
  fmt::print("import fuzz: {} imported, {} ran, {} rejected with kiln::Error\n", imported, ran,
             rejected);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(ran, 0);
}

}  // namespace
}  // namespace kiln::onnx
