#include "kiln/nn/dropout.h"

#include "kiln/nn/init.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

Dropout::Dropout(DropoutOptions options) : Module("Dropout"), options_(options) {
  KILN_CHECK(options.p() >= 0.0 && options.p() < 1.0, "Dropout: p must be in [0, 1), got {}",
             options.p());
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || options_.p() == 0.0) return x;
  return dropout(x, options_.p(), true, options_.generator());
}

std::string Dropout::extra_repr() const {
  return fmt::format("p={}", options_.p());
}

Embedding::Embedding(EmbeddingOptions options) : Module("Embedding"), options_(options) {
  const int64_t V = options.num_embeddings(), C = options.embedding_dim();
  KILN_CHECK(V > 0 && C > 0,
             "Embedding: num_embeddings and embedding_dim must be positive, got {} and {}", V, C);
  if (options.padding_idx()) {
    int64_t p = *options.padding_idx();
    KILN_CHECK(
        p >= -V && p < V,
        "Embedding: padding_idx {} is out of range for num_embeddings={} (need -{} <= p < {})", p,
        V, V, V);
    padding_idx_ = p < 0 ? p + V : p;
  }
  weight = register_parameter("weight", zeros({V, C}));
  reset_parameters();
}

void Embedding::reset_parameters(Generator* gen) {
  init::normal_(weight, 0.0, 1.0, gen);
  if (padding_idx_ >= 0) {
    Array row = weight.data().select(0, padding_idx_);
    row.fill_(0.0);
  }
}

Tensor Embedding::forward(const Tensor& ids) {
  KILN_CHECK_TYPE(ids.dtype() == kInt64 || ids.dtype() == kInt32,
                  "{}: ids must be int64 (or int32) class indices, got {} of shape {}", where(),
                  ids.dtype(), ids.shape());
  Tensor i64 = ids.dtype() == kInt64 ? ids : ids.to(kInt64);
  return embedding(weight, i64, padding_idx_);
}

std::string Embedding::extra_repr() const {
  std::string s = fmt::format("{}, {}", options_.num_embeddings(), options_.embedding_dim());
  if (padding_idx_ >= 0) s += fmt::format(", padding_idx={}", padding_idx_);
  return s;
}

}  // namespace kiln::nn
