#pragma once
// The recorded graph. Each differentiable op call makes one Node holding its name and attributes
// (ONNX export and graph printing read them), edges to the nodes that produced its inputs, and the
// backward function that maps output gradients to input gradients.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "kiln/tensor/array.h"

namespace kiln {

struct TensorImpl;
struct Node;

/// An op attribute value: ints, floats, strings and int / float lists (what ONNX attributes hold).
using AttrValue =
    std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;
/// Ordered (name, value) attributes of a recorded op.
using Attrs = std::vector<std::pair<std::string, AttrValue>>;
/// Looks up an attribute by name; throws if missing or of another type.
template <typename T>
const T& attr(const Attrs& attrs, const std::string& name);

/// Gradients, one per op input (an undefined Array means "no gradient").
using Grads = std::vector<Array>;
/// Output gradients (one per op output) -> input gradients (one per input).
using BackwardFn = std::function<Grads(const std::vector<Array>& grad_outputs)>;

/// Where a gradient flows: output `output_nr` of `node` (an op or a leaf's accumulator).
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t output_nr = 0;
};

struct Node {
  std::string name;
  Attrs attrs;
  std::vector<Edge> next;            // one per op input; node == nullptr when it needs no grad
  BackwardFn backward;               // empty for leaf accumulators and after release
  std::vector<Shape> output_shapes;  // for zero-filling outputs that received no gradient
  std::vector<DType> output_dtypes;
  std::weak_ptr<TensorImpl> leaf;  // set for a leaf's accumulator
  bool is_leaf_accumulator = false;
  bool released = false;  // true after a backward without retain_graph
  uint64_t sequence = 0;  // creation order; later nodes run first in backward
  /// Hooks on an output's gradient (output_nr, fn): fn may return a replacement or an undefined
  /// Array.
  std::vector<std::pair<uint32_t, std::function<Array(const Array&)>>> hooks;
  /// Leaf accumulators only: (id, fn) called after this backward's gradient has been added into
  /// the leaf's .grad (Tensor::register_post_accumulate_grad_hook; distributed training starts a
  /// gradient all-reduce from here while backward goes on).
  std::vector<std::pair<uint64_t, std::function<void()>>> post_accumulate_hooks;
};

/// An Array saved for backward together with its version; get() throws if it was modified in place
/// since (as PyTorch: "modified by an inplace operation").
class Saved {
 public:
  Saved() = default;
  Saved(Array a, const char* op) : a_(std::move(a)), version_(a_.version()), op_(op) {}
  const Array& get() const;
  bool defined() const { return a_.defined(); }

 private:
  Array a_;
  uint64_t version_ = 0;
  const char* op_ = "";
};

}  // namespace kiln
