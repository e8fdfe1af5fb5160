// kiln::layers configs: serialize / deserialize (what model.save() stores as the architecture) and
// the class registry that register_layer extends.
#include <map>
#include <mutex>

#include "kiln/tensor/error.h"
#include "kiln/train/layers.h"

namespace kiln::layers {

// ---------------------------------------------------------------- configs

namespace {

std::vector<int64_t> read_pair(const json::Value& cfg, std::string_view key,
                               std::vector<int64_t> fallback) {
  const json::Value* v = cfg.find(key);
  if (v == nullptr || v->is_null()) return fallback;
  std::vector<int64_t> out;
  if (v->is_number()) return {v->as_int(), v->as_int()};
  for (const json::Value& e : v->as_array()) out.push_back(e.as_int());
  return out;
}

nn::Pool2dOptions read_pool(const json::Value& c) {
  nn::Pool2dOptions o(read_pair(c, "pool_size", {2, 2}));
  std::vector<int64_t> strides = read_pair(c, "strides", {});
  if (!strides.empty()) o.stride(strides);
  return o.padding_mode(c.get_or<std::string>("padding", "valid"));
}

using Factory = std::function<std::shared_ptr<Layer>(const json::Value&)>;

std::string read_activation(const json::Value& c) {
  std::string a = c.get_or<std::string>("activation", "");
  return a == "linear" ? "" : a;
}

std::map<std::string, Factory>& registry() {
  static std::map<std::string, Factory> r = {
      {"Dense",
       [](const json::Value& c) {
         return Dense(c.at("units").as_int(), read_activation(c), c.get_or<bool>("use_bias", true));
       }},
      {"Dropout",
       [](const json::Value& c) {
         return Dropout(c.at("rate").as_double(), c.get_or<int64_t>("seed", -1));
       }},
      {"Flatten", [](const json::Value&) { return Flatten(); }},
      {"Activation", [](const json::Value& c) { return Activation(read_activation(c)); }},
      {"Conv2D",
       [](const json::Value& c) {
         return Conv2D(
             nn::Conv2dOptions(0, c.at("filters").as_int(), read_pair(c, "kernel_size", {}))
                 .stride(read_pair(c, "strides", {1, 1}))
                 .padding_mode(c.get_or<std::string>("padding", "valid"))
                 .dilation(read_pair(c, "dilation_rate", {1, 1}))
                 .groups(c.get_or<int64_t>("groups", 1))
                 .bias(c.get_or<bool>("use_bias", true)),
             read_activation(c));
       }},
      {"MaxPooling2D", [](const json::Value& c) { return MaxPooling2D(read_pool(c)); }},
      {"AveragePooling2D", [](const json::Value& c) { return AveragePooling2D(read_pool(c)); }},
      {"GlobalAveragePooling2D",
       [](const json::Value& c) {
         return GlobalAveragePooling2D(c.get_or<bool>("keepdims", false));
       }},
      {"BatchNormalization",
       [](const json::Value& c) {
         return std::make_shared<BatchNormalizationLayer>(
             c.get_or<double>("momentum", 0.99), c.get_or<double>("epsilon", 1e-3),
             c.get_or<bool>("center", true), c.get_or<bool>("scale", true));
       }},
      {"LayerNormalization",
       [](const json::Value& c) {
         return std::make_shared<LayerNormalizationLayer>(c.get_or<double>("epsilon", 1e-3),
                                                          c.get_or<bool>("center", true),
                                                          c.get_or<bool>("scale", true));
       }},
      {"Embedding",
       [](const json::Value& c) {
         return Embedding(c.at("input_dim").as_int(), c.at("output_dim").as_int());
       }},
  };
  return r;
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

json::Value serialize(const nn::Module& layer) {
  const auto* l = dynamic_cast<const Layer*>(&layer);
  KILN_CHECK(l != nullptr,
             "serialize: {} is not a kiln::layers layer, so its architecture cannot be saved (save "
             "the weights "
             "with save_weights, or rebuild it with load_model(path, factory))",
             layer.where());
  json::Value spec = json::Value::object();
  spec["class_name"] = l->name();
  spec["config"] = l->config();
  return spec;
}

std::shared_ptr<Layer> deserialize(const json::Value& spec) {
  const std::string& cls = spec.at("class_name").as_string();
  Factory f;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(cls);
    if (it == registry().end()) {
      std::vector<std::string> known;
      for (const auto& [k, v] : registry()) known.push_back(k);
      throw Error(
          fmt::format("deserialize: unknown layer class \"{}\" (known: {}; add custom layers with "
                      "layers::register_layer)",
                      cls, fmt::join(known, ", ")));
    }
    f = it->second;
  }
  const json::Value* cfg = spec.find("config");
  try {
    return f(cfg ? *cfg : json::Value::object());
  } catch (const Error& e) {
    throw Error(fmt::format("deserialize: layer {} with config {}: {}", cls,
                            cfg ? cfg->dump() : "{}", e.what()));
  }
}

void register_layer(const std::string& class_name, Factory factory) {
  KILN_CHECK(!class_name.empty() && factory, "register_layer: needs a class name and a factory");
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[class_name] = std::move(factory);
}

}  // namespace kiln::layers
