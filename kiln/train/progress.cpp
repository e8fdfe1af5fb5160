#include "kiln/train/progress.h"

#include <fmt/format.h>

#include <cmath>

namespace kiln {

namespace {
constexpr int kBarWidth = 30;
// Keras redraws an interactive bar at most this often.
constexpr double kRedrawInterval = 0.05;
}  // namespace

Progbar::Progbar(int64_t target, int verbose, std::FILE* out, bool interactive)
    : target_(target), verbose_(verbose), out_(out), interactive_(interactive) {
  now_ = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  start_ = now_();
}

void Progbar::set_clock(std::function<double()> now) {
  now_ = std::move(now);
  start_ = now_();
}

std::string Progbar::format_value(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return std::abs(v) > 1e-3 ? fmt::format("{:.4f}", v) : fmt::format("{:.4e}", v);
}

std::string Progbar::format_step_time(double s) {
  if (s >= 1) return fmt::format("{:.0f}s/step", s);
  if (s >= 1e-3) return fmt::format("{:.0f}ms/step", s * 1e3);
  return fmt::format("{:.0f}us/step", s * 1e6);
}

std::string Progbar::format_eta(double s) {
  const int64_t t = static_cast<int64_t>(s);
  if (t > 3600) return fmt::format("{}:{:02d}:{:02d}", t / 3600, (t % 3600) / 60, t % 60);
  if (t > 60) return fmt::format("{}:{:02d}", t / 60, t % 60);
  return fmt::format("{}s", t);
}

std::string Progbar::render(int64_t current,
                            const std::vector<std::pair<std::string, double>>& values,
                            double elapsed, bool final) const {
  const int digits = static_cast<int>(fmt::format("{}", target_).size());
  std::string line = fmt::format("{:>{}}/{}", current, digits, target_);
  if (verbose_ == 1) {
    const double frac =
        target_ > 0 ? static_cast<double>(current) / static_cast<double>(target_) : 1.0;
    const int filled = static_cast<int>(kBarWidth * std::min(frac, 1.0));
    std::string bar;
    if (filled > 0) {
      bar.append(static_cast<size_t>(filled - 1), '=');
      bar += current < target_ ? '>' : '=';
    }
    bar.append(static_cast<size_t>(kBarWidth - filled), '.');
    line += " [" + bar + "]";
  }
  const double per_step = current > 0 ? elapsed / static_cast<double>(current) : 0.0;
  if (final) {
    line += fmt::format(" - {:.0f}s {}", elapsed, format_step_time(per_step));
  } else {
    line += " - ETA: " + format_eta(per_step * static_cast<double>(target_ - current));
  }
  for (const auto& [k, v] : values) line += fmt::format(" - {}: {}", k, format_value(v));
  return line;
}

bool Progbar::wants_update(int64_t current) const {
  if (verbose_ != 1 || !interactive_ || out_ == nullptr) return false;
  return last_draw_ < 0 || now_() - last_draw_ >= kRedrawInterval || current >= target_;
}

void Progbar::update(int64_t current, const std::vector<std::pair<std::string, double>>& values,
                     bool finalize) {
  if (verbose_ <= 0 || out_ == nullptr) return;
  const double t = now_();
  // Only a terminal shows intermediate states, throttled.
  if (!finalize && !wants_update(current)) return;
  last_draw_ = t;
  std::string line = render(current, values, t - start_, finalize);
  if (interactive_ && verbose_ == 1) {
    // Pad to erase the rest of a longer previous line.
    const size_t width = line.size();
    if (width < last_width_) line.append(last_width_ - width, ' ');
    last_width_ = width;
    std::fputc('\r', out_);
  }
  std::fputs(line.c_str(), out_);
  if (finalize) std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace kiln
