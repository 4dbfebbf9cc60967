#include "server/config_values.h"

#include <charconv>
#include <cmath>

#include "engine/base/unicode.h"

namespace grinqh {

// The widest decode GRINQH stores (docs/FORMAT.md); the model may store fewer planes, which
// the server checks against the loaded model.
constexpr double kMaxDecodeBits = 8;

std::string NumberRange::ToString() const {
  if (max == kUnbounded) return absl::StrCat(min_open ? "> " : ">= ", FormatNumber(min));
  return absl::StrCat(min_open ? "in (" : "in [", FormatNumber(min), ", ", FormatNumber(max), "]");
}

std::string NodeKind(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsScalar()) return absl::StrCat("'", node.Scalar(), "'");
  return "nothing (null)";
}

std::string FormatNumber(double value) {
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  if (std::isnan(value)) return ".nan";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string FormatBits(float bits, bool autoscaled) {
  if (autoscaled) return "auto";
  if (bits == kFullDepthBits) return "full";
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, bits);  // float: "3.3", not 3.2999...
  return std::string(buffer, result.ptr);
}

absl::Status ValueReader::Error(const YAML::Node& node, const std::string& path, std::string_view message) const {
  std::string where = source_;
  if (node.IsDefined() && !node.Mark().is_null()) {
    absl::StrAppend(&where, ":", node.Mark().line + 1, ":", node.Mark().column + 1);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": ", path.empty() ? "" : absl::StrCat(path, ": "), std::string(message)));
}

absl::Status ValueReader::ReadInt(const YAML::Node& node, const std::string& path, long long min, long long max,
                                  long long& out) const {
  long long value = 0;
  if (!node.IsScalar() || !YAML::convert<long long>::decode(node, value)) {
    return Error(node, path, absl::StrCat("must be an integer, got ", NodeKind(node)));
  }
  if (value < min || value > max) {
    // Most counts have no upper bound but their type's: name it only when it was passed.
    const bool unbounded = max == std::numeric_limits<int>::max() || max == std::numeric_limits<long long>::max();
    const std::string range =
        unbounded && value < min ? absl::StrCat(">= ", min) : absl::StrCat("in [", min, ", ", max, "]");
    return Error(node, path, absl::StrCat("must be ", range, ", got ", value));
  }
  out = value;
  return absl::OkStatus();
}

absl::Status ValueReader::ReadNumber(const YAML::Node& node, const std::string& path, NumberRange range,
                                     double& out) const {
  double value = 0;
  if (!node.IsScalar() || !YAML::convert<double>::decode(node, value)) {
    return Error(node, path, absl::StrCat("must be a number, got ", NodeKind(node)));
  }
  if (!range.Contains(value)) {  // also refuses .nan
    return Error(node, path, absl::StrCat("must be ", range.ToString(), ", got ", node.Scalar()));
  }
  out = value;
  return absl::OkStatus();
}

absl::Status ValueReader::ReadBool(const YAML::Node& node, const std::string& path, bool& out) const {
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, out)) {
    return Error(node, path, absl::StrCat("must be true or false, got ", NodeKind(node)));
  }
  return absl::OkStatus();
}

absl::Status ValueReader::ReadString(const YAML::Node& node, const std::string& path, std::string& out) const {
  if (!node.IsScalar()) return Error(node, path, absl::StrCat("must be a string, got ", NodeKind(node)));
  if (node.Scalar().empty()) return Error(node, path, "must not be empty");
  // Text the configuration can print and read back the same (FormatServerConfig): valid
  // UTF-8 without control characters.
  const std::string& text = node.Scalar();
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Char c = DecodeUtf8(text, pos);
    if (c.status != Utf8Status::kOk || c.code_point < 0x20 || c.code_point == 0x7F) {
      return Error(node, path, "must be UTF-8 text without control characters");
    }
    pos += c.length;
  }
  out = text;
  return absl::OkStatus();
}

absl::Status ValueReader::ReadBits(const YAML::Node& node, const std::string& path, bool allow_auto, float& bits,
                                   bool& autoscaled) const {
  const std::string expected = absl::StrCat("must be `full`", allow_auto ? ", `auto`" : "",
                                            " or a number of bits in (0, ", FormatNumber(kMaxDecodeBits), "]");
  if (!node.IsScalar()) return Error(node, path, absl::StrCat(expected, ", got ", NodeKind(node)));
  autoscaled = false;
  if (node.Scalar() == "full") {
    bits = kFullDepthBits;
    return absl::OkStatus();
  }
  if (allow_auto && node.Scalar() == "auto") {
    bits = kFullDepthBits;
    autoscaled = true;
    return absl::OkStatus();
  }
  double value = 0;
  if (!YAML::convert<double>::decode(node, value) || !(value > 0 && value <= kMaxDecodeBits)) {
    return Error(node, path, absl::StrCat(expected, ", got '", node.Scalar(), "'"));
  }
  bits = static_cast<float>(value);
  return absl::OkStatus();
}

}  // namespace grinqh
