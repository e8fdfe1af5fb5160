// nn::Module: registration by name, hierarchical names, traversal order, modes, freezing,
// state_dict round trips and the strict / non-strict error messages, printing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/nn/nn.h"

namespace {

using kiln::Tensor;
namespace nn = kiln::nn;

std::vector<std::string> names(const nn::NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

// A small encoder-like tree: own parameter, a Sequential of layers and a LayerNorm.
class Block : public nn::Module {
 public:
  using Module::forward;
  Block() : Module("Block") {
    scale = register_parameter("scale", kiln::ones({4}));
    mlp = register_module("mlp",
                          nn::sequential({std::make_shared<nn::Linear>(nn::LinearOptions(4, 8)),
                                          std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Linear>(nn::LinearOptions(8, 4))}));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(4)));
    offset = register_buffer("offset", kiln::zeros({4}));
  }
  Tensor forward(const Tensor& x) override {
    return norm->forward(kiln::add(kiln::mul(mlp->forward(x), scale), offset));
  }
  Tensor scale, offset;
  std::shared_ptr<nn::Sequential> mlp;
  std::shared_ptr<nn::LayerNorm> norm;
};

class Model : public nn::Module {
 public:
  using Module::forward;
  Model() : Module("Model") {
    encoder = register_module("encoder", std::make_shared<nn::ModuleList>());
    for (int i = 0; i < 2; ++i) encoder->push_back(std::make_shared<Block>());
    head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(4, 2)));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (const auto& b : *encoder) h = b->forward(h);
    return head->forward(h);
  }
  std::shared_ptr<nn::ModuleList> encoder;
  std::shared_ptr<nn::Linear> head;
};

TEST(Module, NamedParametersAreHierarchicalInRegistrationOrder) {
  Model m;
  const std::vector<std::string> want = {"encoder.0.scale",
                                         "encoder.0.mlp.0.weight",
                                         "encoder.0.mlp.0.bias",
                                         "encoder.0.mlp.2.weight",
                                         "encoder.0.mlp.2.bias",
                                         "encoder.0.norm.weight",
                                         "encoder.0.norm.bias",
                                         "encoder.1.scale",
                                         "encoder.1.mlp.0.weight",
                                         "encoder.1.mlp.0.bias",
                                         "encoder.1.mlp.2.weight",
                                         "encoder.1.mlp.2.bias",
                                         "encoder.1.norm.weight",
                                         "encoder.1.norm.bias",
                                         "head.weight",
                                         "head.bias"};
  EXPECT_EQ(names(m.named_parameters()), want);
  EXPECT_EQ(names(m.named_buffers()),
            (std::vector<std::string>{"encoder.0.offset", "encoder.1.offset"}));
  EXPECT_EQ(names(m.named_parameters(/*recurse=*/false)), std::vector<std::string>{});
  EXPECT_EQ(m.parameters().size(), want.size());
  // Each parameter carries its full name (Tensor::name), set when the tree was assembled.
  for (const auto& [n, p] : m.named_parameters()) EXPECT_EQ(p.name(), n);
  EXPECT_EQ(m.encoder->at<Block>(1)->mlp->path(), "encoder.1.mlp");
  EXPECT_EQ(m.num_parameters(), 2 * (4 + 4 * 8 + 8 + 8 * 4 + 4 + 4 + 4) + 4 * 2 + 2);
}

TEST(Module, StateDictHasParametersThenBuffersPerModule) {
  Block b;
  EXPECT_EQ(b.state_dict().keys(),
            (std::vector<std::string>{"scale", "offset", "mlp.0.weight", "mlp.0.bias",
                                      "mlp.2.weight", "mlp.2.bias", "norm.weight", "norm.bias"}));
}

TEST(Module, NamedModulesAndChildren) {
  Model m;
  std::vector<std::string> mods;
  for (const auto& [n, mod] : m.named_modules()) mods.push_back(n + ":" + mod->name());
  EXPECT_EQ(mods[0], ":Model");
  EXPECT_EQ(mods[1], "encoder:ModuleList");
  EXPECT_EQ(mods[2], "encoder.0:Block");
  EXPECT_EQ(mods[3], "encoder.0.mlp:Sequential");
  EXPECT_EQ(mods[4], "encoder.0.mlp.0:Linear");
  EXPECT_EQ(mods.back(), "head:Linear");
  EXPECT_EQ(m.children().size(), 2u);
  EXPECT_EQ(m.named_children()[1].first, "head");
  EXPECT_EQ(m.child("head"), m.head);
  EXPECT_EQ(m.child("nope"), nullptr);
}

TEST(Module, SharedParametersAppearOnce) {
  auto a = std::make_shared<nn::Linear>(nn::LinearOptions(3, 3));
  auto seq = nn::sequential({a, std::make_shared<nn::ReLU>(), a});
  EXPECT_EQ(names(seq->named_parameters()), (std::vector<std::string>{"0.weight", "0.bias"}));
  EXPECT_EQ(seq->state_dict().size(), 4u);  // state_dict keeps both paths, as PyTorch
}

TEST(Module, RegistrationErrorsNameTheModuleAndTheRule) {
  nn::Linear l(nn::LinearOptions(2, 2));
  try {
    l.register_parameter("weight", kiln::zeros({1}));
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Linear: cannot register parameter 'weight'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(l.register_buffer("a.b", kiln::zeros({1})), kiln::Error);
  EXPECT_THROW(l.register_parameter("", kiln::zeros({1})), kiln::Error);
  EXPECT_THROW(l.register_parameter("ids", kiln::zeros({1}, kiln::kInt64)), kiln::Error);
}

TEST(Module, ForwardErrorsNameTheModulePath) {
  Model m;
  try {
    m.forward(kiln::zeros({2, 5}));
    FAIL();
  } catch (const kiln::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "encoder.0.mlp.0 (Linear): input shape [2, 5] does not end in in_features=4"),
              std::string::npos)
        << e.what();
  }
}

TEST(Module, TrainEvalPropagates) {
  Model m;
  EXPECT_TRUE(m.is_training());
  m.eval();
  for (const auto& [n, mod] : m.named_modules()) EXPECT_FALSE(mod->is_training()) << n;
  m.train();
  for (const auto& [n, mod] : m.named_modules()) EXPECT_TRUE(mod->is_training()) << n;
}

TEST(Module, FreezingASubtreeStopsItsGradients) {
  Model m;
  m.encoder->requires_grad(false);
  EXPECT_EQ(m.num_parameters(/*trainable_only=*/true), 4 * 2 + 2);
  Tensor y = m.forward(kiln::randn({3, 4}));
  kiln::sum(y).backward();
  EXPECT_TRUE(m.head->weight.grad().defined());
  for (const auto& [n, p] : m.encoder->named_parameters()) EXPECT_FALSE(p.grad().defined()) << n;
  m.zero_grad();
  EXPECT_FALSE(m.head->weight.grad().defined());
  m.requires_grad(true);
  EXPECT_EQ(m.num_parameters(true), m.num_parameters());
}

TEST(Module, StateDictRoundTripCopiesValuesIntoTheSameTensors) {
  kiln::manual_seed(1);
  Model a, b;
  Tensor x = kiln::randn({5, 4});
  ASSERT_NE(a.forward(x).to_vector<float>(), b.forward(x).to_vector<float>());
  const float* ptr = b.head->weight.data_ptr<float>();
  nn::LoadResult r = b.load_state_dict(a.state_dict());
  EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty());
  EXPECT_EQ(a.forward(x).to_vector<float>(), b.forward(x).to_vector<float>());
  EXPECT_EQ(b.head->weight.data_ptr<float>(),
            ptr);  // loaded in place: handles held elsewhere stay valid
  EXPECT_TRUE(b.head->weight.requires_grad());
}

TEST(Module, StrictLoadListsMissingUnexpectedAndMismatchedKeysTogether) {
  Model m;
  nn::StateDict sd = m.state_dict();
  sd.erase("head.bias");
  sd.erase("encoder.1.offset");
  sd.insert("decoder.weight", kiln::zeros({2}));
  sd.set("head.weight", kiln::zeros({3, 4}));
  Tensor before = m.head->weight.clone();
  try {
    m.load_state_dict(sd);
    FAIL();
  } catch (const kiln::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Missing key(s) (2): \"encoder.1.offset\", \"head.bias\""),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("Unexpected key(s) (1): \"decoder.weight\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("size mismatch for head.weight: copying a tensor with shape [3, 4] from the "
                       "dict, the shape in "
                       "the current module is [2, 4]"),
              std::string::npos)
        << msg;
  }
  // Nothing was copied.
  EXPECT_EQ(m.head->weight.to_vector<float>(), before.to_vector<float>());
}

TEST(Module, NonStrictLoadSkipsKeysButStillRejectsShapeMismatch) {
  Model m;
  nn::StateDict sd;
  sd.insert("head.weight", kiln::ones({2, 4}));
  sd.insert("extra", kiln::ones({1}));
  nn::LoadResult r = m.load_state_dict(sd, /*strict=*/false);
  EXPECT_EQ(r.unexpected_keys, std::vector<std::string>{"extra"});
  EXPECT_EQ(r.missing_keys.size(), m.state_dict().size() - 1);
  EXPECT_EQ(m.head->weight.to_vector<float>(), std::vector<float>(8, 1.0f));
  sd.set("head.weight", kiln::ones({4, 2}));
  EXPECT_THROW(m.load_state_dict(sd, false), kiln::Error);
}

TEST(Module, LoadStateDictConvertsDtypeAndKeepsIntBuffers) {
  nn::BatchNorm1d bn(nn::BatchNormOptions(3));
  nn::StateDict sd = bn.state_dict();
  sd.set("running_mean", kiln::full({3}, 0.5, kiln::kFloat64));
  sd.set("num_batches_tracked", kiln::full({}, 7, kiln::kInt64));
  bn.load_state_dict(sd);
  EXPECT_EQ(bn.running_mean.dtype(), kiln::kFloat32);
  EXPECT_EQ(bn.running_mean.to_vector<float>(), std::vector<float>(3, 0.5f));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 7);
}

TEST(Module, PrintsTheTreeLikePyTorch) {
  auto seq = nn::sequential({std::make_shared<nn::Linear>(nn::LinearOptions(2, 8)),
                             std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.25),
                             std::make_shared<nn::Linear>(nn::LinearOptions(8, 1).bias(false))});
  EXPECT_EQ(nn::to_string(*seq),
            "Sequential(\n"
            "  (0): Linear(in_features=2, out_features=8, bias=true)\n"
            "  (1): ReLU()\n"
            "  (2): Dropout(p=0.25)\n"
            "  (3): Linear(in_features=8, out_features=1, bias=false)\n"
            ")");
  Block b;
  EXPECT_EQ(nn::to_string(b),
            "Block(\n"
            "  (mlp): Sequential(\n"
            "    (0): Linear(in_features=4, out_features=8, bias=true)\n"
            "    (1): ReLU()\n"
            "    (2): Linear(in_features=8, out_features=4, bias=true)\n"
            "  )\n"
            "  (norm): LayerNorm((4,), eps=1e-05, elementwise_affine=true)\n"
            ")");
}

TEST(Module, SequentialNamedChildrenAndMultiInputForward) {
  auto seq = nn::sequential({{"attn", std::make_shared<nn::MultiheadAttention>(
                                          nn::MultiheadAttentionOptions(4, 2).batch_first(true))},
                             {"act", std::make_shared<nn::ReLU>()}});
  EXPECT_EQ(names(seq->named_parameters())[0], "attn.in_proj_weight");
  Tensor x = kiln::randn({2, 3, 4});
  Tensor y = seq->forward({x, x, x});
  EXPECT_EQ(y.shape(), (kiln::Shape{2, 3, 4}));
  EXPECT_THROW(seq->at<nn::Linear>(0), kiln::Error);
  EXPECT_NE(seq->at<nn::MultiheadAttention>(0), nullptr);
}

TEST(Module, ReplaceModuleRenames) {
  Model m;
  m.replace_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(4, 3)));
  EXPECT_EQ(m.forward(kiln::randn({1, 4})).shape(),
            (kiln::Shape{1, 2}));  // the member still points to the old head
  auto head = std::static_pointer_cast<nn::Linear>(m.child("head"));
  EXPECT_EQ(head->weight.name(), "head.weight");
  EXPECT_EQ(m.state_dict().at("head.weight").shape(), (kiln::Shape{3, 4}));
}

}  // namespace
