// The `grinqh` subcommands. Each takes the arguments after its name and returns an
// error for main to print; INVALID_ARGUMENT means the arguments were wrong.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace grinqh {

absl::Status RunGenerate(const std::vector<std::string>& args);
absl::Status RunTokenize(const std::vector<std::string>& args);
absl::Status RunBench(const std::vector<std::string>& args);
absl::Status RunEval(const std::vector<std::string>& args);
absl::Status RunQuantize(const std::vector<std::string>& args);
absl::Status RunServe(const std::vector<std::string>& args);
absl::Status RunClient(const std::vector<std::string>& args);

}  // namespace grinqh
