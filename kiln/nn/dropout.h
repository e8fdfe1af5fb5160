#pragma once
// Dropout and Embedding.
#include <optional>

#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

struct DropoutOptions {
  explicit DropoutOptions(double p = 0.5) : p_(p) {}
  /// Probability of zeroing an element, in [0, 1).
  KILN_ARG(double, p);
  /// Random source (nullptr = the default generator); set one for reproducible masks.
  KILN_ARG(Generator*, generator) = nullptr;
};

/// Inverted dropout (Srivastava et al., 2014): in training, zeroes each element with probability p
/// and scales the rest by 1/(1−p); in eval mode, the identity. Any shape.
class Dropout : public Module {
 public:
  using Module::forward;
  explicit Dropout(DropoutOptions options = DropoutOptions());
  explicit Dropout(double p) : Dropout(DropoutOptions(p)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  const DropoutOptions& options() const { return options_; }

 private:
  DropoutOptions options_;
};

struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  KILN_ARG(int64_t, num_embeddings);
  KILN_ARG(int64_t, embedding_dim);
  /// Row that is initialised to zero and gets no gradient (negative counts from the end).
  KILN_ARG(std::optional<int64_t>, padding_idx) = std::nullopt;
};

/// A lookup table.   ids: int64 (*) in [0, V)  weight: (V, C)  y: (*, C)
/// Default init as PyTorch: weight ~ N(0, 1), the padding_idx row zeroed.
class Embedding : public Module {
 public:
  using Module::forward;
  explicit Embedding(EmbeddingOptions options);
  Tensor forward(const Tensor& ids) override;
  void reset_parameters(Generator* gen = nullptr) override;
  std::string extra_repr() const override;
  /// The padding row after wrapping a negative index, or -1 for none.
  int64_t padding_idx() const { return padding_idx_; }

  Tensor weight;  // (V, C)

 private:
  EmbeddingOptions options_;
  int64_t padding_idx_ = -1;
};

}  // namespace kiln::nn
