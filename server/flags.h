// Command-line flags for the `grinqh` subcommands: `--name value` or `--name=value`,
// booleans as bare `--name`. Unknown flags and malformed values are errors that name the flag.
// Every subcommand also takes `--help` (or `-h`): its usage, listing its flags.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace grinqh {

// One flag a subcommand takes, as Parse accepts it and its --help lists it.
struct FlagSpec {
  std::string name;   // without dashes
  std::string value;  // what its value is ("N", "DIR"); empty for a boolean flag
  std::string help;   // one line: what it does, and its default
};

// A subcommand: its name, what it does (one line) and its flags.
struct CommandSpec {
  std::string name;
  std::string summary;
  std::vector<FlagSpec> flags;
};

// What `grinqh NAME --help` prints: the summary, then the flags, one line each.
std::string HelpText(const CommandSpec& command);

class Flags {
 public:
  // `valued` and `boolean` list the flag names (without dashes) this subcommand takes.
  // `--help` and `-h` are taken as well: they end parsing, with help() true.
  static absl::StatusOr<Flags> Parse(const std::vector<std::string>& args, const std::set<std::string>& valued,
                                     const std::set<std::string>& boolean);
  // The flags `command` lists.
  static absl::StatusOr<Flags> Parse(const std::vector<std::string>& args, const CommandSpec& command);

  // `--help` or `-h` was given: the caller prints its HelpText instead of running.
  bool help() const { return help_; }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> String(const std::string& name) const;

  // When the flag is given, parses it into `out` (an integer in [min, max] / a number);
  // otherwise leaves `out` as it is.
  template <typename Int>
  absl::Status ReadInt(const std::string& name, long long min, long long max, Int& out) const {
    long long value = 0;
    if (absl::Status s = ReadInt(name, min, max, value); !s.ok() || !Has(name)) return s;
    out = static_cast<Int>(value);
    return absl::OkStatus();
  }
  absl::Status ReadInt(const std::string& name, long long min, long long max, long long& out) const;
  absl::Status ReadFloat(const std::string& name, float& out) const;

 private:
  std::map<std::string, std::string> values_;
  bool help_ = false;
};

}  // namespace grinqh
