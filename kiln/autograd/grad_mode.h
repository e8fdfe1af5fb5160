#pragma once
// Grad mode: when disabled (NoGradGuard), ops record nothing, as torch::NoGradGuard.
namespace kiln {

bool grad_enabled();
void set_grad_enabled(bool enabled);

/// Disables graph recording for its lifetime (thread-local), restoring the previous mode after.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace kiln
