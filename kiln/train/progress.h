#pragma once
// Keras' progress bar, as fit() / evaluate() print it:
//
//   Epoch 1/5
//   1875/1875 [==============================] - 3s 1ms/step - loss: 0.2931 - accuracy: 0.9150 -
//   val_loss: 0.1402
//
// On a terminal (interactive) the line is redrawn in place ("\r") at most every 50 ms while the
// epoch runs, with an ETA; otherwise only the final line is printed, once per epoch. verbose 2
// prints the final line without the bar. Values print as %.4f, or %.4e when |v| <= 1e-3 (Keras'
// rule).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

class Progbar {
 public:
  /// target: steps in the epoch; verbose: 1 (bar) or 2 (one line); out: where to print;
  /// interactive: redraw in place (pass isatty(fileno(out))).
  Progbar(int64_t target, int verbose, std::FILE* out, bool interactive);
  /// Reports progress after `current` steps with the running values; `finalize` prints the final
  /// line.
  void update(int64_t current, const std::vector<std::pair<std::string, double>>& values,
              bool finalize = false);
  /// Whether a non-final update(current, ...) would draw now (terminal, verbose 1, not throttled);
  /// lets callers skip computing values that would not be shown.
  bool wants_update(int64_t current) const;
  /// Replaces the clock (seconds since an arbitrary origin) — for tests.
  void set_clock(std::function<double()> now);

  /// "0.2931" / "1.2000e-05".
  static std::string format_value(double v);
  /// "3s 1ms/step" parts: the per-step time as Keras prints it ("1ms/step", "250us/step",
  /// "2s/step").
  static std::string format_step_time(double seconds_per_step);
  /// ETA as Keras prints it: "42s", "3:05", "1:02:03".
  static std::string format_eta(double seconds);
  /// The line for `current` of `target` (without "\r" or "\n").
  std::string render(int64_t current, const std::vector<std::pair<std::string, double>>& values,
                     double elapsed, bool final) const;

 private:
  int64_t target_;
  int verbose_;
  std::FILE* out_;
  bool interactive_;
  std::function<double()> now_;
  double start_ = 0.0, last_draw_ = -1.0;
  size_t last_width_ = 0;
};

}  // namespace kiln
