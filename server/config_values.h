// Internal to the config library: reading one YAML scalar into a typed field, with errors
// "SOURCE:LINE:COLUMN: key.path: what is wrong", and the names of the config's enums.
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/config.h"

namespace grinqh {

template <typename Enum, size_t N>
using EnumNames = std::array<std::pair<std::string_view, Enum>, N>;

inline constexpr EnumNames<BackendKind, 3> kBackendNames = {
    {{"auto", BackendKind::kAuto}, {"cpu", BackendKind::kCpu}, {"cuda", BackendKind::kCuda}}};
inline constexpr EnumNames<LogLevel, 4> kLogLevelNames = {{{"debug", LogLevel::kDebug},
                                                           {"info", LogLevel::kInfo},
                                                           {"warning", LogLevel::kWarning},
                                                           {"error", LogLevel::kError}}};
inline constexpr EnumNames<LogFormat, 2> kLogFormatNames = {{{"text", LogFormat::kText}, {"json", LogFormat::kJson}}};

template <typename Enum, size_t N>
std::optional<Enum> FindChoice(const EnumNames<Enum, N>& names, std::string_view text) {
  for (const auto& [name, value] : names) {
    if (name == text) return value;
  }
  return std::nullopt;
}
template <typename Enum, size_t N>
std::string_view NameOf(const EnumNames<Enum, N>& names, Enum value) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "?";
}
template <typename Enum, size_t N>
std::string ChoiceList(const EnumNames<Enum, N>& names) {  // "auto, cpu, cuda"
  std::string list;
  for (const auto& [name, value] : names) absl::StrAppend(&list, list.empty() ? "" : ", ", std::string(name));
  return list;
}

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();
struct NumberRange {
  double min = 0;
  double max = kUnbounded;
  bool min_open = false;  // (min, max] rather than [min, max]
  bool Contains(double v) const { return (min_open ? v > min : v >= min) && v <= max; }
  std::string ToString() const;  // "(0, 1]", or ">= 0" when unbounded above
};

// "a mapping", "a list", "null", or the scalar quoted.
std::string NodeKind(const YAML::Node& node);
// The shortest text that reads back to the same value: 0.1, 4, 2.5.
std::string FormatNumber(double value);
// "full", "auto", or FormatNumber(bits).
std::string FormatBits(float bits, bool autoscaled);

class ValueReader {
 public:
  explicit ValueReader(std::string source) : source_(std::move(source)) {}

  // INVALID_ARGUMENT: "source:line:column: path: message" (no line when the node has none,
  // no path when it is empty).
  absl::Status Error(const YAML::Node& node, const std::string& path, std::string_view message) const;

  absl::Status ReadInt(const YAML::Node& node, const std::string& path, long long min, long long max,
                       long long& out) const;
  template <typename Int>
  absl::Status ReadInt(const YAML::Node& node, const std::string& path, long long min, long long max,
                       Int& out) const {
    long long value = 0;
    if (absl::Status s = ReadInt(node, path, min, max, value); !s.ok()) return s;
    out = static_cast<Int>(value);
    return absl::OkStatus();
  }
  absl::Status ReadNumber(const YAML::Node& node, const std::string& path, NumberRange range, double& out) const;
  absl::Status ReadBool(const YAML::Node& node, const std::string& path, bool& out) const;
  absl::Status ReadString(const YAML::Node& node, const std::string& path, std::string& out) const;  // non-empty
  // Decode bits: `full` (kFullDepthBits), a number in (0, 8], or, when allowed, `auto`.
  absl::Status ReadBits(const YAML::Node& node, const std::string& path, bool allow_auto, float& bits,
                        bool& autoscaled) const;

  template <typename Enum, size_t N>
  absl::Status ReadChoice(const YAML::Node& node, const std::string& path, const EnumNames<Enum, N>& names,
                          Enum& out) const {
    std::string text;
    if (absl::Status s = ReadString(node, path, text); !s.ok()) return s;
    const std::optional<Enum> value = FindChoice(names, text);
    if (!value) {
      return Error(node, path, absl::StrCat("must be one of ", ChoiceList(names), "; got '", text, "'"));
    }
    out = *value;
    return absl::OkStatus();
  }

 private:
  std::string source_;
};

}  // namespace grinqh
