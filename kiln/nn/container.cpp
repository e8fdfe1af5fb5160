#include "kiln/nn/container.h"

#include <typeinfo>

#include "kiln/tensor/error.h"

namespace kiln::nn {

Sequential::Sequential(std::initializer_list<ModulePtr> modules) : Module("Sequential") {
  for (const auto& m : modules) push_back(m);
}

Sequential::Sequential(std::vector<ModulePtr> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(std::move(m));
}

Sequential::Sequential(std::vector<std::pair<std::string, ModulePtr>> named_modules)
    : Module("Sequential") {
  for (auto& [n, m] : named_modules) push_back(n, std::move(m));
}

void Sequential::push_back(ModulePtr module) {
  push_back(std::to_string(modules_.size()), std::move(module));
}

void Sequential::push_back(const std::string& name, ModulePtr module) {
  modules_.push_back(register_module(name, std::move(module)));
}

const ModulePtr& Sequential::operator[](size_t i) const {
  KILN_CHECK(i < modules_.size(), "{}: index {} is out of range for {} modules", where(), i,
             modules_.size());
  return modules_[i];
}

void Sequential::throw_bad_cast(size_t i) const {
  throw Error(fmt::format("{}: module {} is a {}, not the type asked for", where(), i,
                          modules_[i]->name()));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

Tensor Sequential::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(!modules_.empty(), "{}: cannot run an empty Sequential on {} inputs", where(),
             inputs.size());
  Tensor y = modules_[0]->forward(inputs);
  for (size_t i = 1; i < modules_.size(); ++i) y = modules_[i]->forward(y);
  return y;
}

std::shared_ptr<Sequential> sequential(std::initializer_list<ModulePtr> modules) {
  return std::make_shared<Sequential>(modules);
}
std::shared_ptr<Sequential> sequential(
    std::vector<std::pair<std::string, ModulePtr>> named_modules) {
  return std::make_shared<Sequential>(std::move(named_modules));
}

ModuleList::ModuleList(std::initializer_list<ModulePtr> modules) : Module("ModuleList") {
  for (const auto& m : modules) push_back(m);
}

ModuleList::ModuleList(std::vector<ModulePtr> modules) : Module("ModuleList") {
  for (auto& m : modules) push_back(std::move(m));
}

void ModuleList::push_back(ModulePtr module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

void ModuleList::throw_bad_cast(size_t i) const {
  throw Error(fmt::format("{}: module {} is a {}, not the type asked for", where(), i,
                          modules_[i]->name()));
}

const ModulePtr& ModuleList::operator[](size_t i) const {
  KILN_CHECK(i < modules_.size(), "{}: index {} is out of range for {} modules", where(), i,
             modules_.size());
  return modules_[i];
}

}  // namespace kiln::nn
