// ONNX loss ops for import_model (see import_ops_internal.h): NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss with class weights, ignore_index and the three reductions, over
// (N, C) or (N, C, d1, ...) inputs. Composites of gather / log_softmax, so they train.
#include <fmt/ranges.h>

#include "kiln/onnx/import_ops_internal.h"
#include "kiln/tensor/ops.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// loss[n, d...] = -weight[t] · x[n, t, d...] with t = target[n, d...]; ignored targets weigh 0.
// "mean" divides the sum by the sum of the weights that were used.
Tensor nll(const NodeContext& n, const Tensor& x, const Tensor& target, const Tensor& weight) {
  KILN_CHECK_SHAPE(x.dim() >= 2 && target.dim() == x.dim() - 1,
                   "{}: input [{}] must be (N, C, ...) and target [{}] (N, ...)", n.where(),
                   fmt::join(x.shape(), ", "), fmt::join(target.shape(), ", "));
  KILN_CHECK_TYPE(is_integral(target.dtype()), "{}: target must be integer, got {}", n.where(),
                  target.dtype());
  const int64_t C = x.size(1);
  const bool has_ignore = n.has("ignore_index");
  const int64_t ignore = n.i("ignore_index", 0);
  Array t = target.data().to(kInt64).contiguous().clone();
  Array keep(t.shape(), x.dtype());
  for (int64_t k = 0; k < t.numel(); ++k) {
    int64_t& v = t.data<int64_t>()[k];
    const bool ignored = has_ignore && v == ignore;
    KILN_CHECK_SHAPE(ignored || (v >= 0 && v < C), "{}: target {} is out of range for {} classes",
                     n.where(), v, C);
    if (ignored) v = 0;
    if (x.dtype() == kFloat64)
      keep.data<double>()[k] = ignored ? 0.0 : 1.0;
    else
      keep.data<float>()[k] = ignored ? 0.0f : 1.0f;
  }
  const Tensor tt(t);
  Tensor picked = squeeze(gather(x, 1, unsqueeze(tt, 1)), 1);  // (N, d...)
  Tensor w(keep);
  if (weight.defined()) {
    KILN_CHECK_SHAPE(weight.dim() == 1 && weight.size(0) == C, "{}: weight [{}] must be ({})",
                     n.where(), fmt::join(weight.shape(), ", "), C);
    w = mul(reshape(index_select(weight, 0, reshape(tt, {tt.numel()})), tt.shape()), w);
  }
  const Tensor loss = neg(mul(picked, w));
  const std::string red = n.s("reduction", "mean");
  if (red == "none") return loss;
  if (red == "sum") return sum(loss);
  KILN_CHECK(red == "mean", "{}: reduction '{}' must be none, sum or mean", n.where(), red);
  return div(sum(loss), sum(w));
}

Outs nll_op(const NodeContext& n, const Inputs& in) {
  return {nll(n, required(n, in, 0), required(n, in, 1), in.size() > 2 ? in[2] : Tensor())};
}

Outs softmax_cross_entropy_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_SHAPE(x.dim() >= 2, "{}: scores must be (N, C, ...), got [{}]", n.where(),
                   fmt::join(x.shape(), ", "));
  const Tensor log_prob = log_softmax(x, 1);
  return {nll(n, log_prob, required(n, in, 1), in.size() > 2 ? in[2] : Tensor()), log_prob};
}

}  // namespace

void register_loss_ops(OpTable& t) {
  t["NegativeLogLikelihoodLoss"] = nll_op;
  t["SoftmaxCrossEntropyLoss"] = softmax_cross_entropy_op;
}

}  // namespace kiln::onnx::detail
