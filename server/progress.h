// Progress of the long offline commands (quantize, eval) on stderr. On a terminal, a bar per
// stage redrawn in place: "stage  [#####.....]  45.0%  12.3 s, about 15.0 s left". Elsewhere
// (a log file, CI), carriage returns would pile up in one line: plain lines instead, one when a
// stage starts, then at most one every few seconds, and one when it completes.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace grinqh {

class ProgressReporter {
 public:
  // `now_seconds` is the clock (tests pass their own); empty: a steady clock from construction.
  ProgressReporter(std::ostream& out, bool terminal, std::function<double()> now_seconds = {});
  // For stderr, as a terminal when it is one.
  static ProgressReporter ForStderr();

  // `fraction` of `stage` is done (1: the stage is complete).
  void operator()(const std::string& stage, double fraction);

  static constexpr double kTerminalRedrawSeconds = 0.1;
  static constexpr double kPlainLineSeconds = 5;

 private:
  std::ostream& out_;
  const bool terminal_;
  std::function<double()> now_;
  std::string stage_;
  double stage_start_ = 0;
  double drawn_ = -1;  // when the stage's last bar or line was written
  bool done_ = true;   // the stage's line is finished (no bar awaits its newline)
};

}  // namespace grinqh
