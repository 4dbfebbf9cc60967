#include "server/version.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/serving/model.h"  // the backend registry's names

namespace grinqh {

// Set for this file only by server/CMakeLists.txt, so a new revision recompiles one file.
std::string_view Version() { return GRINQH_VERSION; }
std::string_view GitRevision() { return GRINQH_GIT_REVISION; }
std::string_view BuildType() { return GRINQH_BUILD_TYPE; }

std::string VersionText() {
  std::vector<std::string> compiled_in;
  for (const std::string& name : BackendNames()) {
    if (name != "auto") compiled_in.push_back(name);  // a choice, not a backend
  }
  return absl::StrCat("grinqh ", std::string(Version()), "\ngit revision: ", std::string(GitRevision()),
                      "\nbuild type: ", std::string(BuildType()),
                      "\nbackends compiled in: ", absl::StrJoin(compiled_in, ", "),
                      "\nbackends usable here: ", absl::StrJoin(AvailableBackends(), ", "), "\n");
}

}  // namespace grinqh
