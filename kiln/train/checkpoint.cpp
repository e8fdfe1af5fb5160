// Model::save / save_weights / load_weights and load_model: one safetensors file per checkpoint.
//
// save() writes tensors "model.<state_dict name>" and "optimizer.<optimizer state_dict key>", and
// __metadata__ entries (each a string; JSON where structured):
//   format "kiln.model", format_version "1", class "Sequential" | "Model", name,
//   architecture {"layers": [{"class_name": "Dense", "config": {...}}, ...]} (Sequential of
//   kiln::layers), input_shape [null, 784], input_dtype "float32", compile {"optimizer": {...},
//   "loss": {...}, "metrics": [...]}, scheduler {"last_epoch": ..., ...}, epoch "2", history
//   {"epoch": [0, 1], "history": {"loss": [...], ...}}
// save_weights() writes the plain state_dict names with format "kiln.weights".
#include <charconv>

#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"
#include "kiln/train/layers.h"
#include "kiln/train/model.h"
#include "kiln/train/model_state.h"

namespace kiln {

namespace {

constexpr const char* kModelFormat = "kiln.model";
constexpr const char* kWeightsFormat = "kiln.weights";
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimizerPrefix = "optimizer.";

json::Value shape_json(const Shape& s) {
  json::Value a = json::Value::array();
  for (size_t i = 0; i < s.size(); ++i)
    a.push_back(i == 0 && s[i] < 0 ? json::Value() : json::Value(s[i]));
  return a;
}

Shape shape_from_json(const json::Value& v) {
  Shape s;
  for (const json::Value& d : v.as_array()) s.push_back(d.is_null() ? -1 : d.as_int());
  return s;
}

DType dtype_from_name(const std::string& name, const std::string& path) {
  for (DType t : {kFloat32, kFloat64, kInt64, kInt32, kUInt8, kBool})
    if (dtype_name(t) == name) return t;
  throw IOError(fmt::format("load: {}: unknown input_dtype \"{}\" in the metadata", path, name));
}

// A metadata entry parsed as JSON (nullptr-like null when absent).
json::Value meta_json(const SafetensorsFile& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) return json::Value();
  return json::parse(it->second, fmt::format("load: {}: __metadata__[\"{}\"]", path, key));
}

SafetensorsMetadata base_metadata(const Model& m, const char* format, const std::string& cls,
                                  DType input_dtype) {
  // emplace, not operator= from a const char*: GCC 12 raises a false -Wrestrict on the latter.
  SafetensorsMetadata md{{"format", std::string(format)},
                         {"format_version", std::string("1")},
                         {"class", cls},
                         {"name", m.name()}};
  if (m.built()) {
    md["input_shape"] = shape_json(m.input_shape()).dump();
    md["input_dtype"] = std::string(dtype_name(input_dtype));
  }
  return md;
}

// The module's weights from a save() file ("model." names) or a save_weights() / foreign file
// (plain names).
nn::StateDict weights_of(const SafetensorsFile& f) {
  auto it = f.metadata.find("format");
  const bool prefixed = it != f.metadata.end() && it->second == kModelFormat;
  nn::StateDict dict;
  const std::string prefix = kModelPrefix;
  for (const auto& [name, t] : f.tensors) {
    if (prefixed) {
      if (name.rfind(prefix, 0) == 0) dict.insert(name.substr(prefix.size()), t);
    } else {
      dict.insert(name, t);
    }
  }
  return dict;
}

void build_from_metadata(Model& m, const SafetensorsFile& f, const std::string& path) {
  if (m.built()) return;
  json::Value shape = meta_json(f, "input_shape", path);
  if (shape.is_null()) return;
  auto dt = f.metadata.find("input_dtype");
  m.build(shape_from_json(shape),
          dt == f.metadata.end() ? kFloat32 : dtype_from_name(dt->second, path));
}

void require_model_format(const SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find("format");
  if (it == f.metadata.end() || it->second != kModelFormat)
    throw IOError(fmt::format(
        "load_model: {}: not a Kiln model file (__metadata__ format is \"{}\", expected \"{}\"; "
        "weights-only files load with Model::load_weights)",
        path, it == f.metadata.end() ? "" : it->second, kModelFormat));
}

}  // namespace

void Model::save_weights(const std::string& path) const {
  if (!is_main_process())
    return;  // distributed: rank 0 writes, the weights are the same everywhere
  NamedTensorList tensors;
  for (const auto& [k, t] : module_->state_dict()) tensors.emplace_back(k, t);
  save_safetensors(path, tensors, base_metadata(*this, kWeightsFormat, class_name(), input_dtype_));
}

void Model::save(const std::string& path) const {
  if (!is_main_process()) return;  // distributed: rank 0 writes, the state is the same everywhere
  NamedTensorList tensors;
  for (const auto& [k, t] : module_->state_dict()) tensors.emplace_back(kModelPrefix + k, t);
  SafetensorsMetadata md = base_metadata(*this, kModelFormat, class_name(), input_dtype_);
  if (json::Value arch = architecture(); !arch.is_null()) md["architecture"] = arch.dump();
  if (compiled_) {
    json::Value c = json::Value::object();
    c["optimizer"] = compiled_->spec.serialize(compiled_->optimizer.get());
    c["loss"] = compiled_->loss ? compiled_->loss->serialize() : json::Value();
    json::Value ms = json::Value::array();
    for (const auto& m : compiled_->metrics) ms.push_back(m->serialize());
    c["metrics"] = std::move(ms);
    md["compile"] = c.dump();
    if (compiled_->optimizer) {
      for (const auto& [k, t] : compiled_->optimizer->state_dict())
        tensors.emplace_back(kOptimizerPrefix + k, t);
    } else if (compiled_->pending) {
      for (const auto& [k, t] : compiled_->pending_optimizer)
        tensors.emplace_back(kOptimizerPrefix + k, t);
    }
    if (compiled_->scheduler) {
      json::Value s = json::Value::object();
      for (const auto& [k, v] : compiled_->scheduler->state_dict()) s[k] = v;
      md["scheduler"] = s.dump();
    }
  }
  md["epoch"] = fmt::format("{}", epoch_);
  md["history"] = history_.to_json().dump();
  save_safetensors(path, tensors, md);
}

void Model::load_weights(const std::string& path, bool strict) {
  SafetensorsFile f = load_safetensors(path);
  build_from_metadata(*this, f, path);
  try {
    module_->load_state_dict(weights_of(f), strict);
  } catch (const Error& e) {
    throw Error(fmt::format("load_weights: {}: {}", path, e.what()));
  }
}

void Model::restore_training_state(const SafetensorsFile& f, const std::string& path) {
  if (auto it = f.metadata.find("epoch"); it != f.metadata.end()) {
    int e = 0;
    auto r = std::from_chars(it->second.data(), it->second.data() + it->second.size(), e);
    KILN_CHECK_AS(IOError, r.ec == std::errc() && e >= 0,
                  "load_model: {}: bad epoch \"{}\" in the metadata", path, it->second);
    epoch_ = e;
  }
  history_ = History::from_json(meta_json(f, "history", path));
  json::Value c = meta_json(f, "compile", path);
  if (c.is_null()) return;
  std::vector<MetricSpec> ms;
  for (const json::Value& m : c.at("metrics").as_array()) ms.emplace_back(metrics::deserialize(m));
  compile(optimizers::OptimizerSpec::deserialize(c.at("optimizer")),
          c.at("loss").is_null() ? LossSpec(nullptr) : LossSpec(losses::deserialize(c.at("loss"))),
          ms);
  if (const json::Value* g = c.at("optimizer").find("groups")) compiled_->groups = *g;
  const std::string prefix = kOptimizerPrefix;
  for (const auto& [name, t] : f.tensors)
    if (name.rfind(prefix, 0) == 0)
      compiled_->pending_optimizer.emplace_back(name.substr(prefix.size()), t);
  json::Value sched = meta_json(f, "scheduler", path);
  if (!sched.is_null())
    for (const auto& [k, v] : sched.members())
      compiled_->pending_scheduler.emplace_back(k, v.as_double());
  compiled_->pending =
      !compiled_->pending_optimizer.empty() || !compiled_->pending_scheduler.empty();
  if (built_ && compiled_->pending) ensure_optimizer();
}

Sequential load_model(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  require_model_format(f, path);
  json::Value arch = meta_json(f, "architecture", path);
  if (arch.is_null())
    throw Error(fmt::format(
        "load_model: {}: the file holds no Sequential architecture (it was saved from a custom "
        "Model, or a Sequential with non-kiln::layers modules): rebuild the module with "
        "load_model(path, factory)",
        path));
  std::vector<nn::ModulePtr> ls;
  try {
    for (const json::Value& spec : arch.at("layers").as_array())
      ls.push_back(layers::deserialize(spec));
  } catch (const Error& e) {
    throw Error(fmt::format("load_model: {}: {}", path, e.what()));
  }
  auto name = f.metadata.find("name");
  Sequential m(std::move(ls), name == f.metadata.end() ? "sequential" : name->second);
  build_from_metadata(m, f, path);
  try {
    m.module_ptr()->load_state_dict(weights_of(f), true);
    m.restore_training_state(f, path);
  } catch (const IOError&) {
    throw;
  } catch (const Error& e) {
    throw Error(fmt::format("load_model: {}: {}", path, e.what()));
  }
  return m;
}

Model load_model(const std::string& path, const std::function<nn::ModulePtr()>& factory) {
  KILN_CHECK(static_cast<bool>(factory), "load_model: {}: the module factory is empty", path);
  SafetensorsFile f = load_safetensors(path);
  require_model_format(f, path);
  auto name = f.metadata.find("name");
  Model m(factory(), name == f.metadata.end() ? "model" : name->second);
  build_from_metadata(m, f, path);
  try {
    m.module_ptr()->load_state_dict(weights_of(f), true);
    m.restore_training_state(f, path);
  } catch (const IOError&) {
    throw;
  } catch (const Error& e) {
    throw Error(fmt::format("load_model: {}: {}", path, e.what()));
  }
  return m;
}

}  // namespace kiln
