// Reading whole small files (JSON configs, tokenizers) with errors that name the path.
#pragma once

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace grinqh {

// NOT_FOUND when the file cannot be opened, DATA_LOSS when reading fails midway.
absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

}  // namespace grinqh
