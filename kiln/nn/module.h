#pragma once
// nn::Module — the base of every layer and model. A module owns parameters (trainable tensors),
// buffers (state saved with the model but not trained, e.g. BatchNorm's running_mean) and child
// modules, each registered under a name. Names compose into hierarchical paths
// ("encoder.layers.3.self_attn.out_proj.weight"), which checkpoints (state_dict), optimiser groups,
// ONNX initializers and pretrained-weight import all key on (STYLE.md lesson 6).
//
//   class Mlp : public nn::Module {
//    public:
//     using Module::forward;  // keep the multi-input overload visible next to the override
//     Mlp() : Module("Mlp") {
//       fc1 = register_module("fc1", std::make_shared<nn::Linear>(nn::LinearOptions(784, 128)));
//       fc2 = register_module("fc2", std::make_shared<nn::Linear>(nn::LinearOptions(128, 10)));
//     }
//     Tensor forward(const Tensor& x) override { return fc2->forward(relu(fc1->forward(x))); }
//     std::shared_ptr<nn::Linear> fc1, fc2;
//   };
//
// Modules are held by plain std::shared_ptr<Module> (no Impl/holder templates). A module is not
// copyable; share it by pointer.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/tensor.h"

namespace kiln::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;
/// (hierarchical name, tensor) pairs in registration order — what optimisers take.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// An ordered name → Tensor map: a module's parameters and buffers as saved in a checkpoint. Keys
/// keep insertion order (the module's registration order); lookups are O(1).
class StateDict {
 public:
  StateDict() = default;
  /// From (name, tensor) pairs; throws on a duplicate name.
  explicit StateDict(NamedTensors items);
  /// Appends `name`; throws if it is already present.
  void insert(std::string name, Tensor value);
  /// Sets `name`, appending it when absent.
  void set(const std::string& name, Tensor value);
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  /// The tensor under `name`; throws naming the key (and the keys that exist) when absent.
  const Tensor& at(const std::string& name) const;
  /// A pointer to the tensor under `name`, or nullptr.
  const Tensor* find(const std::string& name) const;
  /// Removes `name` (no-op when absent).
  void erase(const std::string& name);
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<std::string> keys() const;
  const NamedTensors& items() const { return items_; }
  NamedTensors::const_iterator begin() const { return items_.begin(); }
  NamedTensors::const_iterator end() const { return items_.end(); }

 private:
  NamedTensors items_;
  std::unordered_map<std::string, size_t> index_;
};

/// What a non-strict load_state_dict skipped.
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the module, not in the dict (left unchanged)
  std::vector<std::string> unexpected_keys;  // in the dict, not in the module (ignored)
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  /// `type_name` is what name() returns and what printing shows ("Linear", "Sequential", ...).
  explicit Module(std::string type_name);
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The module's type name, e.g. "Linear" (printing and summary tables use it).
  const std::string& name() const { return type_name_; }
  /// The module's path from the root it was last registered into ("encoder.layers.0"), "" for a
  /// root.
  const std::string& path() const { return path_; }
  /// "encoder.layers.0 (TransformerEncoderLayer)" — how errors name a module.
  std::string where() const;

  // ---- forward ----
  /// The single-input forward. The default throws (a module that only has a multi-input forward,
  /// or a container such as ModuleList).
  virtual Tensor forward(const Tensor& x);
  /// The multi-input forward for modules that need more than one input — masks, states, key/value.
  /// Each such module documents the positional order of `inputs` (e.g. MultiheadAttention:
  /// {query, key, value, key_padding_mask, attn_mask}); an undefined Tensor stands for an omitted
  /// optional input. The default accepts exactly one input and calls forward(x).
  virtual Tensor forward(const std::vector<Tensor>& inputs);
  Tensor operator()(const Tensor& x) { return forward(x); }
  Tensor operator()(const std::vector<Tensor>& inputs) { return forward(inputs); }

  // ---- registration (names: non-empty, no '.', unique within this module) ----
  /// Registers a trainable tensor; sets requires_grad and names it. Returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  /// Registers a non-trained tensor that belongs to the model's state (saved in state_dict).
  Tensor register_buffer(const std::string& name, Tensor value);
  /// Registers a child module; its parameters and buffers are renamed with the "name." prefix.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    register_module_impl(name, module);
    return module;
  }
  /// Replaces an already registered parameter's / buffer's / child's value under the same name.
  /// (Members holding the old handle are not updated: use when the registry owns the tensor.)
  void replace_parameter(const std::string& name, Tensor value);
  void replace_buffer(const std::string& name, Tensor value);
  void replace_module(const std::string& name, ModulePtr module);

  // ---- traversal (registration order; pre-order over the tree: own entries before children's)
  // ----
  /// Parameters with hierarchical names; a tensor shared by two modules appears once.
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, ModulePtr>> named_children() const;
  std::vector<ModulePtr> children() const;
  /// This module (named `prefix`, "" by default) and every descendant, pre-order.
  std::vector<std::pair<std::string, ModulePtr>> named_modules(
      const std::string& prefix = "") const;
  /// A registered child by name (nullptr when absent).
  ModulePtr child(const std::string& name) const;
  /// Number of parameter elements (optionally only those that require grad).
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- modes and gradients ----
  /// Sets training mode on this module and every descendant (Dropout, BatchNorm read it).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Clears every parameter's gradient (set to undefined, as PyTorch's set_to_none).
  void zero_grad();
  /// Freezes (false) or unfreezes (true) every parameter of this subtree.
  void requires_grad(bool on);
  /// Re-draws this subtree's parameters with each layer's default (PyTorch) initialisation; layers
  /// with parameters override it, containers recurse. `gen` = nullptr uses the default generator.
  virtual void reset_parameters(Generator* gen = nullptr);

  // ---- state ----
  /// Parameters then buffers, module by module (PyTorch's key order), as detached handles that
  /// share storage with the module.
  StateDict state_dict() const;
  /// Copies values from `dict` into this module's parameters and buffers (converting dtype). Shape
  /// mismatches are always an error; with `strict`, so are missing and unexpected keys. Every
  /// problem is reported in one message and nothing is copied unless all checks pass.
  LoadResult load_state_dict(const StateDict& dict, bool strict = true);
  /// Names every parameter and buffer of this subtree (Tensor::set_name) with its full path from
  /// this module and records each descendant's path(). Registration does this automatically; call
  /// it on the root after changing the tree's structure (e.g. Sequential::push_back after
  /// registration).
  void name_parameters();

  // ---- printing ----
  /// The text inside this module's parentheses when printed, e.g. "in_features=4, out_features=3".
  virtual std::string extra_repr() const { return ""; }

 protected:
  /// Parameter / buffer lookup for subclasses (throws naming the module when absent).
  const Tensor& parameter(const std::string& name) const;
  const Tensor& buffer(const std::string& name) const;

 private:
  void register_module_impl(const std::string& name, ModulePtr module);
  void check_new_name(const std::string& what, const std::string& name) const;
  void relabel(const std::string& prefix);
  void collect_state(const std::string& prefix, NamedTensors& out) const;

  std::string type_name_;
  std::string path_;
  bool training_ = true;
  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
};

/// The module tree as PyTorch prints it:
///   Sequential(
///     (0): Linear(in_features=2, out_features=8, bias=true)
///     (1): ReLU()
///   )
std::string to_string(const Module& module);

}  // namespace kiln::nn
