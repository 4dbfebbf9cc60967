#include "server/flags.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace grinqh {

absl::StatusOr<Flags> Flags::Parse(const std::vector<std::string>& args, const std::set<std::string>& valued,
                                   const std::set<std::string>& boolean) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      flags.help_ = true;
      return flags;
    }
    if (arg.rfind("--", 0) != 0) return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (boolean.count(name)) {
      if (value) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      flags.values_[name] = "true";
    } else if (valued.count(name)) {
      if (!value) {
        if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        value = args[++i];
      }
      flags.values_[name] = *value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return flags;
}

absl::StatusOr<Flags> Flags::Parse(const std::vector<std::string>& args, const CommandSpec& command) {
  std::set<std::string> valued, boolean;
  for (const FlagSpec& flag : command.flags) (flag.value.empty() ? boolean : valued).insert(flag.name);
  return Parse(args, valued, boolean);
}

std::string HelpText(const CommandSpec& command) {
  std::vector<std::pair<std::string, std::string>> lines;  // "--name VALUE", help
  for (const FlagSpec& flag : command.flags) {
    lines.emplace_back(absl::StrCat("--", flag.name, flag.value.empty() ? "" : " ", flag.value), flag.help);
  }
  lines.emplace_back("-h, --help", "this text");
  size_t width = 0;
  for (const auto& [left, help] : lines) width = std::max(width, left.size());
  std::string text = absl::StrCat("usage: grinqh ", command.name, " [flags]\n", command.summary, "\n\nflags:\n");
  for (const auto& [left, help] : lines) {
    absl::StrAppend(&text, "  ", left, std::string(width + 2 - left.size(), ' '), help, "\n");
  }
  return text;
}

std::optional<std::string> Flags::String(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

absl::Status Flags::ReadInt(const std::string& name, long long min, long long max, long long& out) const {
  const auto text = String(name);
  if (!text) return absl::OkStatus();
  long long value = 0;
  if (!absl::SimpleAtoi(*text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be an integer, got '", *text, "'"));
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be in [", min, ", ", max, "], got ", value));
  }
  out = value;
  return absl::OkStatus();
}

absl::Status Flags::ReadFloat(const std::string& name, float& out) const {
  const auto text = String(name);
  if (!text) return absl::OkStatus();
  double value = 0;
  if (!absl::SimpleAtod(*text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be a number, got '", *text, "'"));
  }
  out = static_cast<float>(value);
  return absl::OkStatus();
}

}  // namespace grinqh
