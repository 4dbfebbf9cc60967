#include "server/progress.h"

#include <sstream>

#include "gtest/gtest.h"

namespace grinqh {
namespace {

TEST(ProgressReporterTest, PlainLinesAtMostEveryFewSecondsWithoutCarriageReturns) {
  std::ostringstream out;
  double now = 0;
  ProgressReporter progress(out, /*terminal=*/false, [&now] { return now; });
  progress("quantizing", 0.0);
  now = 1;
  progress("quantizing", 0.1);  // too soon after the first line
  now = 6;
  progress("quantizing", 0.5);
  now = 7;
  progress("quantizing", 1.0);
  progress("quantizing", 1.0);  // reported once
  now = 8;
  progress("fitting", 0.25);
  EXPECT_EQ(out.str(),
            "quantizing: 0.0% (0.0 s)\n"
            "quantizing: 50.0% (6.0 s, about 6.0 s left)\n"
            "quantizing: 100.0% (7.0 s)\n"
            "fitting: 25.0% (8.0 s)\n");
}

TEST(ProgressReporterTest, TerminalBarRedrawsInPlaceAndEndsItsLine) {
  std::ostringstream out;
  double now = 0;
  ProgressReporter progress(out, /*terminal=*/true, [&now] { return now; });
  now = 2;
  progress("stage", 0.5);
  now = 3;
  progress("next", 1.0);
  const std::string text = out.str();
  EXPECT_EQ(text.find("\rstage "), 0u) << text;
  EXPECT_NE(text.find("[###############...............]  50.0%  2.0 s"), std::string::npos) << text;
  EXPECT_NE(text.find("\n\rnext "), std::string::npos) << text;  // the unfinished bar got its newline
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace grinqh
