#include "server/log.h"

#include <atomic>
#include <chrono>
#include <ctime>
#include <iostream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace grinqh {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogFormat> g_format{LogFormat::kText};
std::mutex g_write_mutex;  // whole lines, not interleaved

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

// key=value; a string value is quoted (JSON-escaped) when it is empty or holds a space, quote or '='.
std::string TextValue(const nlohmann::ordered_json& value) {
  if (!value.is_string()) return value.dump();
  const std::string& text = value.get_ref<const std::string&>();
  if (!text.empty() && text.find_first_of(" \"=\n\t") == std::string::npos) return text;
  return value.dump();
}

}  // namespace

void SetLogOptions(LogLevel level, LogFormat format) {
  g_level = level;
  g_format = format;
}

bool LogEnabled(LogLevel level) { return level >= g_level.load(); }

std::string UtcTimestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                         utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
}

std::string FormatLogLine(std::string_view time, LogLevel level, LogFormat format, std::string_view message,
                          const nlohmann::ordered_json& fields) {
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json line = {{"time", time}, {"level", LevelName(level)}, {"message", message}};
    if (fields.is_object()) {
      for (const auto& item : fields.items()) line[item.key()] = item.value();
    }
    // Invalid UTF-8 (a client's request id) is replaced rather than thrown on.
    return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  std::string line = std::string(time) + " " + std::string(LevelName(level)) + " " + std::string(message);
  if (fields.is_object()) {
    for (const auto& item : fields.items()) absl::StrAppend(&line, " ", item.key(), "=", TextValue(item.value()));
  }
  return line;
}

void LogLine(LogLevel level, std::string_view message, const nlohmann::ordered_json& fields) {
  if (!LogEnabled(level)) return;
  const std::string line = FormatLogLine(UtcTimestamp(), level, g_format.load(), message, fields);
  std::lock_guard lock(g_write_mutex);
  std::cerr << line << '\n' << std::flush;
}

}  // namespace grinqh
