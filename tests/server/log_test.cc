#include "server/log.h"

#include <regex>

#include "gtest/gtest.h"

namespace grinqh {
namespace {

TEST(LogTest, TextLineQuotesOnlyValuesThatNeedIt) {
  const nlohmann::ordered_json fields = {{"id", "req-1"}, {"note", "two words"}, {"empty", ""}, {"tokens", 5}};
  EXPECT_EQ(FormatLogLine("2026-01-02T03:04:05.678Z", LogLevel::kInfo, LogFormat::kText, "request finished", fields),
            "2026-01-02T03:04:05.678Z info request finished id=req-1 note=\"two words\" empty=\"\" tokens=5");
}

TEST(LogTest, JsonLineKeepsTheFieldsAfterTimeLevelAndMessage) {
  const nlohmann::ordered_json fields = {{"id", "r\xff"}, {"bits", 4.5}};
  EXPECT_EQ(FormatLogLine("T", LogLevel::kDebug, LogFormat::kJson, "m", fields),
            "{\"time\":\"T\",\"level\":\"debug\",\"message\":\"m\",\"id\":\"r\xef\xbf\xbd\",\"bits\":4.5}");
}

TEST(LogTest, TimestampIsUtcIso8601WithMilliseconds) {
  EXPECT_TRUE(std::regex_match(UtcTimestamp(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

TEST(LogTest, LevelsBelowTheConfiguredOneAreOff) {
  SetLogOptions(LogLevel::kWarning, LogFormat::kText);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  SetLogOptions(LogLevel::kInfo, LogFormat::kText);
}

}  // namespace
}  // namespace grinqh
