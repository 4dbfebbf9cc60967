// The server's log: one line per event on stderr, each with a UTC timestamp (ISO 8601,
// milliseconds), a level, a message and key/value fields, as text or as one JSON object per
// line. Kept in-house rather than spdlog (Debian's libspdlog-dev 1.10): the server needs one
// sink, two line formats and structured fields, and spdlog would still need its JSON lines
// formatted by hand; nlohmann::json, already linked, renders them.
#pragma once

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace grinqh {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// Process-wide, set once by `grinqh serve` before its threads start. Defaults: info, text.
void SetLogOptions(LogLevel level, LogFormat format);
bool LogEnabled(LogLevel level);

// Fields keep their order: text renders them as key=value (strings with spaces quoted).
void LogLine(LogLevel level, std::string_view message, const nlohmann::ordered_json& fields = {});

// One line: "2026-01-02T03:04:05.678Z info message key=value" or its JSON object
// {"time":..., "level":..., "message":..., fields...}. Exposed for tests.
std::string FormatLogLine(std::string_view time, LogLevel level, LogFormat format, std::string_view message,
                          const nlohmann::ordered_json& fields);
// Now, as "2026-01-02T03:04:05.678Z".
std::string UtcTimestamp();

}  // namespace grinqh
