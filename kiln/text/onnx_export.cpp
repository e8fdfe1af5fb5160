#include "kiln/text/onnx_export.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/error.h"

namespace kiln::text {

namespace {

// The exported computation: the classifier's children registered under their own names (so the
// initializers keep the parameter names of model.safetensors) and an optional softmax.
class ExportedTextModel : public nn::Module {
 public:
  using Module::forward;
  ExportedTextModel(TextClassifier& clf, bool probabilities)
      : Module(clf.name()), clf_(clf), probabilities_(probabilities) {
    register_module("encoder", clf.encoder);
    register_module("dropout", clf.dropout);
    register_module("classifier", clf.classifier);
  }
  /// inputs = {input_ids (B, T) int64, attention_mask (B, T) int64}.
  Tensor forward(const std::vector<Tensor>& inputs) override {
    KILN_CHECK(inputs.size() == 2,
               "export_onnx: the text model takes {{input_ids, attention_mask}}, got {} inputs",
               inputs.size());
    Tensor out = clf_.forward(inputs[0], inputs[1]);  // (B, K) or (B)
    return probabilities_ ? softmax(out, -1) : out;
  }

 private:
  TextClassifier& clf_;
  bool probabilities_;
};

// Example inputs: two rows of T tokens, the second padded after 3 tokens. Token values do not
// matter for the trace; they avoid the pad id so only the mask marks padding.
std::vector<Tensor> example_inputs(const EncoderConfig& c) {
  const int64_t B = 2, T = std::min<int64_t>(6, std::max<int64_t>(1, c.max_positions / 2));
  std::vector<int64_t> ids, mask;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const bool real = b == 0 || t < std::min<int64_t>(3, T);
      int64_t id = (5 + 7 * t + 3 * b) % c.vocab_size;
      if (id == c.padding_id) id = (id + 1) % c.vocab_size;
      ids.push_back(real ? id : c.padding_id);
      mask.push_back(real ? 1 : 0);
    }
  }
  return {from_vector(ids, {B, T}), from_vector(mask, {B, T})};
}

}  // namespace

onnx::ExportInfo export_text_classifier(TextClassifier& module, const std::filesystem::path& path,
                                        bool probabilities, const onnx::ExportOptions& options) {
  const std::string out_name = probabilities         ? "probabilities"
                               : module.regression() ? "score"
                                                     : "logits";
  onnx::ExportOptions o = options;
  o.input_names = {"input_ids", "attention_mask"};
  o.output_names = {out_name};
  o.dynamic_axes = {{"input_ids", {{0, "batch"}, {1, "sequence"}}},
                    {"attention_mask", {{0, "batch"}, {1, "sequence"}}},
                    {out_name, {{0, "batch"}}}};
  const bool was_training = module.is_training();
  ExportedTextModel wrapper(module, probabilities);
  wrapper.eval();  // export_model restores this flag afterwards
  onnx::ExportInfo info;
  try {
    info = onnx::export_model(wrapper, example_inputs(module.encoder->config()), path.string(), o);
  } catch (...) {
    module.train(was_training);
    module.name_parameters();
    throw;
  }
  module.train(was_training);
  module.name_parameters();  // the wrapper renamed nothing, but keep paths rooted at `module`
  return info;
}

onnx::ExportInfo export_onnx(const TextClassificationModel& model,
                             const std::filesystem::path& path,
                             const onnx::ExportOptions& options) {
  return export_text_classifier(*model.module(), path, /*probabilities=*/true, options);
}

onnx::ExportInfo export_onnx(const SentenceSimilarityModel& model,
                             const std::filesystem::path& path,
                             const onnx::ExportOptions& options) {
  return export_text_classifier(*model.module(), path, /*probabilities=*/false, options);
}

}  // namespace kiln::text
