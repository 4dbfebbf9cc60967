// What `grinqh --version` prints and /metrics' grinqh_build_info reports: the project version
// (CMake's), the git revision and build type taken when the build was configured, and the
// backends this build has.
#pragma once

#include <string>
#include <string_view>

namespace grinqh {

std::string_view Version();      // "0.3.0"
std::string_view GitRevision();  // "1acf2b4"; "unknown" when configured outside a git checkout
std::string_view BuildType();    // "Release", "Debug", ...
// The lines of `grinqh --version`.
std::string VersionText();

}  // namespace grinqh
