#include "engine/base/file_util.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace grinqh {

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path.string()));
  return std::move(contents).str();
}

}  // namespace grinqh
