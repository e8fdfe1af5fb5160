// Sequential, and the summary() table of every Model.
#include <cstdio>
#include <map>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/train/layers.h"
#include "kiln/train/model.h"

namespace kiln {

namespace {

// "(None, 128)": Keras prints the batch dim as None.
std::string keras_shape(const Shape& s) {
  if (s.empty()) return "?";
  std::string out = "(None";
  for (size_t i = 1; i < s.size(); ++i) out += fmt::format(", {}", s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// Keras' automatic layer name: the class name in snake case ("MaxPooling2D" -> "max_pooling2d"),
// as keras.utils.to_snake_case does: an underscore before each capital that starts a lower-case
// run, and between a lower-case letter and a capital.
std::string snake_case(const std::string& name) {
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool starts_word = i > 0 && upper(c) && i + 1 < name.size() && lower(name[i + 1]);
    const bool after_lower = i > 0 && upper(c) && lower(name[i - 1]);
    if (starts_word || after_lower) out += '_';
    out += upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// Keras' Param #: trainable and frozen parameters plus floating buffers (BatchNorm's running
// statistics).
struct Counts {
  int64_t total = 0, trainable = 0, bytes = 0, trainable_bytes = 0;
};
Counts count_weights(const nn::Module& m) {
  Counts c;
  for (const auto& [n, p] : m.named_parameters()) {
    const int64_t bytes = p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
    c.total += p.numel();
    c.bytes += bytes;
    if (p.requires_grad()) {
      c.trainable += p.numel();
      c.trainable_bytes += bytes;
    }
  }
  for (const auto& [n, b] : m.named_buffers()) {
    if (!is_floating(b.dtype())) continue;
    c.total += b.numel();
    c.bytes += b.numel() * static_cast<int64_t>(dtype_size(b.dtype()));
  }
  return c;
}

std::string with_commas(int64_t v) {
  std::string digits = fmt::format("{}", v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string human_bytes(int64_t b) {
  const double v = static_cast<double>(b);
  if (v >= 1024.0 * 1024.0 * 1024.0)
    return fmt::format("{:.2f} GB", v / (1024.0 * 1024.0 * 1024.0));
  if (v >= 1024.0 * 1024.0) return fmt::format("{:.2f} MB", v / (1024.0 * 1024.0));
  if (v >= 1024.0) return fmt::format("{:.2f} KB", v / 1024.0);
  return fmt::format("{} B", b);
}

std::string row_text(const std::string& a, const std::string& b, const std::string& c) {
  // Keras' columns at 45% / 85% of a 65-character line.
  std::string line = " " + a;
  line += std::string(line.size() < 29 ? 29 - line.size() : 1, ' ');
  line += b;
  line += std::string(line.size() < 55 ? 55 - line.size() : 1, ' ');
  line += c;
  return line;
}

}  // namespace

// ---------------------------------------------------------------- summary

std::vector<Model::SummaryRow> Model::summary_rows() const {
  std::vector<SummaryRow> rows;
  auto shape_of = [](const nn::Module& m) -> std::string {
    if (const auto* l = dynamic_cast<const layers::Layer*>(&m))
      return keras_shape(l->output_shape());
    return "?";
  };
  auto children = module_->named_children();
  if (children.empty()) {
    rows.push_back({fmt::format("{} ({})", name_, module_->name()), keras_shape(output_shape_),
                    count_weights(*module_).total});
    return rows;
  }
  for (const auto& [n, c] : children)
    rows.push_back({fmt::format("{} ({})", n, c->name()), shape_of(*c), count_weights(*c).total});
  return rows;
}

std::string Model::summary_string() const {
  KILN_CHECK(built_,
             "summary: model '{}' is not built yet, so its layers have no weights or shapes: call "
             "build(input_shape) "
             "(e.g. model.build({{-1, 784}})) or fit() first",
             name_);
  const std::string rule(65, '_'), double_rule(65, '=');
  std::string out = fmt::format("Model: \"{}\"\n{}\n", name_, rule);
  out += row_text("Layer (type)", "Output Shape", "Param #") + "\n" + double_rule + "\n";
  for (const SummaryRow& r : summary_rows())
    out += row_text(r.layer, r.output_shape, with_commas(r.params)) + "\n";
  const Counts c = count_weights(*module_);
  out += double_rule + "\n";
  out += fmt::format("Total params: {} ({})\n", with_commas(c.total), human_bytes(c.bytes));
  out += fmt::format("Trainable params: {} ({})\n", with_commas(c.trainable),
                     human_bytes(c.trainable_bytes));
  out += fmt::format("Non-trainable params: {} ({})\n", with_commas(c.total - c.trainable),
                     human_bytes(c.bytes - c.trainable_bytes));
  out += rule + "\n";
  return out;
}

void Model::summary() const {
  std::fputs(summary_string().c_str(), stdout);
  std::fflush(stdout);
}

// ---------------------------------------------------------------- Sequential

Sequential::Sequential(std::initializer_list<nn::ModulePtr> layers, std::string name)
    : Sequential(std::vector<nn::ModulePtr>(layers), std::move(name)) {}

Sequential::Sequential(std::vector<nn::ModulePtr> layers, std::string name)
    : Model(std::make_shared<nn::Sequential>(), std::move(name)) {
  seq_ = std::static_pointer_cast<nn::Sequential>(module_);
  for (auto& l : layers) add(std::move(l));
}

void Sequential::add(nn::ModulePtr layer) {
  KILN_CHECK(layer != nullptr, "Sequential '{}': add(): the layer is null", name_);
  KILN_CHECK(!built_,
             "Sequential '{}': add(): the model is already built (add layers before build / fit)",
             name_);
  seq_->push_back(std::move(layer));
}

std::string Sequential::output_activation() const {
  return Model::output_activation();
}

void Sequential::build_forward(const Tensor& input) {
  KILN_CHECK(!seq_->empty(), "build: Sequential '{}' has no layers (add some first)", name_);
  Tensor x = input;
  if (const auto* first = dynamic_cast<const layers::Layer*>((*seq_)[0].get());
      first && first->input_dtype() != x.dtype()) {
    x = Tensor(kernels::zeros(x.shape(), first->input_dtype()));
    input_dtype_ = first->input_dtype();
  }
  layer_shapes_.clear();
  for (const auto& layer : *seq_) {
    x = layer->forward(x);
    layer_shapes_.push_back(x.shape());
  }
  output_shape_ = x.shape();
}

std::vector<Model::SummaryRow> Sequential::summary_rows() const {
  // Keras names layers by class, numbering repeats: dense, dropout, dense_1. (Parameters keep
  // their index names, "0.weight", as in PyTorch's Sequential and the saved files.)
  std::vector<SummaryRow> rows;
  std::map<std::string, int> seen;
  size_t i = 0;
  for (const auto& [n, c] : seq_->named_children()) {
    const std::string base = snake_case(c->name());
    const int k = seen[base]++;
    const std::string display = k == 0 ? base : fmt::format("{}_{}", base, k);
    rows.push_back({fmt::format("{} ({})", display, c->name()),
                    i < layer_shapes_.size() ? keras_shape(layer_shapes_[i]) : "?",
                    count_weights(*c).total});
    ++i;
  }
  return rows;
}

json::Value Sequential::architecture() const {
  json::Value list = json::Value::array();
  for (const auto& layer : *seq_) {
    if (dynamic_cast<const layers::Layer*>(layer.get()) == nullptr) return json::Value();
    list.push_back(layers::serialize(*layer));
  }
  json::Value a = json::Value::object();
  a["layers"] = std::move(list);
  return a;
}

}  // namespace kiln
