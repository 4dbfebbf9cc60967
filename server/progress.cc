#include "server/progress.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <utility>

#include "absl/strings/str_format.h"

namespace grinqh {
namespace {

constexpr int kBarWidth = 30;

// "12.3 s, about 15.0 s left": the time left assumes the stage's rate so far holds (none
// until the stage has taken some time).
std::string Times(double elapsed, double stage_elapsed, double fraction) {
  std::string text = absl::StrFormat("%.1f s", elapsed);
  if (fraction > 0 && fraction < 1 && stage_elapsed > 0) {
    absl::StrAppendFormat(&text, ", about %.1f s left", stage_elapsed * (1 - fraction) / fraction);
  }
  return text;
}

}  // namespace

ProgressReporter::ProgressReporter(std::ostream& out, bool terminal, std::function<double()> now_seconds)
    : out_(out), terminal_(terminal), now_(std::move(now_seconds)) {
  if (!now_) {
    now_ = [start = std::chrono::steady_clock::now()] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
  }
}

ProgressReporter ProgressReporter::ForStderr() { return ProgressReporter(std::cerr, isatty(STDERR_FILENO) == 1); }

void ProgressReporter::operator()(const std::string& stage, double fraction) {
  const double now = now_();
  const bool new_stage = stage != stage_;
  if (new_stage) {
    if (terminal_ && !done_) out_ << "\n";  // the last stage's bar stopped short of 100%
    stage_ = stage;
    stage_start_ = now;
    drawn_ = -1;
  }
  const bool complete = fraction >= 1;
  if (!new_stage && complete && done_) return;  // already reported complete
  done_ = complete;
  const double every = terminal_ ? kTerminalRedrawSeconds : kPlainLineSeconds;
  if (!new_stage && !complete && now - drawn_ < every) return;
  drawn_ = now;
  const std::string times = Times(now, now - stage_start_, fraction);
  if (terminal_) {
    const int filled = static_cast<int>(fraction * kBarWidth);
    out_ << absl::StrFormat("\r%-26s [%s%s] %5.1f%%  %s\033[K", stage, std::string(filled, '#'),
                            std::string(kBarWidth - filled, '.'), 100 * fraction, times)
         << (complete ? "\n" : "") << std::flush;
  } else {
    out_ << absl::StrFormat("%s: %.1f%% (%s)\n", stage, 100 * fraction, times) << std::flush;
  }
}

}  // namespace grinqh
