#pragma once
// Sequential and ModuleList.
#include <initializer_list>

#include "kiln/nn/module.h"

namespace kiln::nn {

/// Modules applied in order, y = m_n(…m_1(m_0(x))). Children are named "0", "1", ... (or by the
/// names given), so state_dict keys match PyTorch's nn.Sequential ("0.weight", "2.bias").
///   auto mlp = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
///       std::make_shared<nn::Linear>(nn::LinearOptions(2, 8)), std::make_shared<nn::ReLU>(),
///       std::make_shared<nn::Linear>(nn::LinearOptions(8, 1))});
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<ModulePtr> modules);
  explicit Sequential(std::vector<ModulePtr> modules);
  /// Children with explicit names (in this order).
  explicit Sequential(std::vector<std::pair<std::string, ModulePtr>> named_modules);

  /// Appends under the next index name ("3").
  void push_back(ModulePtr module);
  void push_back(const std::string& name, ModulePtr module);
  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  const ModulePtr& operator[](size_t i) const;
  /// The i-th module as type M (throws naming both types when it is not an M).
  template <typename M>
  std::shared_ptr<M> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!p) throw_bad_cast(i);
    return p;
  }
  std::vector<ModulePtr>::const_iterator begin() const { return modules_.begin(); }
  std::vector<ModulePtr>::const_iterator end() const { return modules_.end(); }

  /// Feeds x through every module's forward(x) in order.
  Tensor forward(const Tensor& x) override;
  /// Feeds `inputs` to the first module's multi-input forward, then the result through the rest.
  Tensor forward(const std::vector<Tensor>& inputs) override;

 private:
  [[noreturn]] void throw_bad_cast(size_t i) const;
  std::vector<ModulePtr> modules_;
};

/// A shared Sequential of `modules`: nn::sequential({fc1, relu, fc2}).
std::shared_ptr<Sequential> sequential(std::initializer_list<ModulePtr> modules);
/// A shared Sequential with named children: nn::sequential({{"fc1", fc1}, {"act", relu}}).
std::shared_ptr<Sequential> sequential(
    std::vector<std::pair<std::string, ModulePtr>> named_modules);

/// A list of registered modules with no forward of its own (iterate it in a parent's forward).
/// Children are named "0", "1", ....
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  ModuleList(std::initializer_list<ModulePtr> modules);
  explicit ModuleList(std::vector<ModulePtr> modules);
  void push_back(ModulePtr module);
  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  const ModulePtr& operator[](size_t i) const;
  /// The i-th module as type M (throws naming both types when it is not an M).
  template <typename M>
  std::shared_ptr<M> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!p) throw_bad_cast(i);
    return p;
  }
  std::vector<ModulePtr>::const_iterator begin() const { return modules_.begin(); }
  std::vector<ModulePtr>::const_iterator end() const { return modules_.end(); }

 private:
  [[noreturn]] void throw_bad_cast(size_t i) const;
  std::vector<ModulePtr> modules_;
};

}  // namespace kiln::nn
