#pragma once
// make_op: how every differentiable op records itself (STYLE.md lesson 1). An op checks shapes,
// computes its output with kernels:: kernels, then calls make_op with its name, attributes and a
// backward lambda; make_op records a Node when grad mode is on and an input requires grad, and
// reports the call to an active Tracer (ONNX export) either way.
//
//   Tensor out = make_op("matmul", {a, b}, kernels::matmul(a.data(), b.data()),
//       [A = save(a), B = save(b)](const Array& dy, const Needs& needs) -> Grads {
//         return {needs[0] ? kernels::matmul(dy, B.get(), false, true) : Array{},
//                 needs[1] ? kernels::matmul(A.get(), dy, true, false) : Array{}};
//       });
#include <type_traits>
#include <vector>

#include "kiln/autograd/node.h"
#include "kiln/autograd/tensor.h"

namespace kiln {

/// Which op inputs need a gradient (index-aligned with the op's inputs).
using Needs = std::vector<bool>;

/// Saves an input's values for backward with its version (see Saved).
inline Saved save(const Tensor& t, const char* op = "") {
  return Saved(t.data(), op);
}
inline Saved save(const Array& a, const char* op = "") {
  return Saved(a, op);
}

/// One recorded op call as a Tracer sees it.
struct TraceEvent {
  std::string name;
  Attrs attrs;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
};

/// Records every op call made on this thread while it is alive (for ONNX export and graph dumps).
class Tracer {
 public:
  Tracer();
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;
  const std::vector<TraceEvent>& events() const { return events_; }
  void record(TraceEvent e) { events_.push_back(std::move(e)); }
  /// The tracer active on this thread, or nullptr.
  static Tracer* active();

 private:
  std::vector<TraceEvent> events_;
  Tracer* prev_;
};

namespace detail {
Edge gradient_edge(const Tensor& t);
std::vector<Tensor> record_op(std::string_view name, const std::vector<Tensor>& inputs,
                              std::vector<Array> outputs, BackwardFn backward, Attrs attrs,
                              bool differentiable);
bool any_requires_grad(const std::vector<Tensor>& inputs);
Needs needs_of(const std::vector<Tensor>& inputs);
}  // namespace detail

/// Records a single-output op. `bw` is `Grads(const Array& dy)` or `Grads(const Array& dy, const
/// Needs&)`.
template <typename F>
Tensor make_op(std::string_view name, const std::vector<Tensor>& inputs, Array out, F bw,
               Attrs attrs = {}) {
  BackwardFn fn;
  if (detail::any_requires_grad(inputs)) {
    if constexpr (std::is_invocable_v<F, const Array&, const Needs&>) {
      fn = [bw = std::move(bw), needs = detail::needs_of(inputs)](const std::vector<Array>& g) {
        return bw(g[0], needs);
      };
    } else {
      fn = [bw = std::move(bw)](const std::vector<Array>& g) { return bw(g[0]); };
    }
  }
  std::vector<Array> outs;
  outs.push_back(std::move(out));
  return detail::record_op(name, inputs, std::move(outs), std::move(fn), std::move(attrs), true)[0];
}

/// Records a multi-output op. `bw(grads_out, needs)` gets one gradient per output (zero-filled when
/// an output got none).
template <typename F>
std::vector<Tensor> make_multi_op(std::string_view name, const std::vector<Tensor>& inputs,
                                  std::vector<Array> outs, F bw, Attrs attrs = {}) {
  BackwardFn fn;
  if (detail::any_requires_grad(inputs))
    fn = [bw = std::move(bw), needs = detail::needs_of(inputs)](const std::vector<Array>& g) {
      return bw(g, needs);
    };
  return detail::record_op(name, inputs, std::move(outs), std::move(fn), std::move(attrs), true);
}

/// Records a non-differentiable op (argmax, comparisons, ...): traced, never in the backward graph.
Tensor make_nondiff_op(std::string_view name, const std::vector<Tensor>& inputs, Array out,
                       Attrs attrs = {});

}  // namespace kiln
