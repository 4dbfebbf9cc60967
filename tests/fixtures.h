// Where the tests find their reference data.
#pragma once

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace grinqh::testing {

// ../shared beside the checkout (or $GRINQH_SHARED_DIR); empty when it is absent.
inline std::filesystem::path SharedDir() {
  const char* env = std::getenv("GRINQH_SHARED_DIR");
  std::filesystem::path dir = env != nullptr ? env : GRINQH_SHARED_DIR;
  return std::filesystem::is_directory(dir) ? dir : std::filesystem::path();
}

// The repository root (for the bundled default model).
inline std::filesystem::path SourceDir() { return GRINQH_SOURCE_DIR; }

}  // namespace grinqh::testing

// Skips the current test, saying why, when ../shared is not there.
#define GRINQH_REQUIRE_SHARED()                                                    \
  do {                                                                             \
    if (::grinqh::testing::SharedDir().empty())                                    \
      GTEST_SKIP() << "needs the shared fixtures folder (../shared or "            \
                      "$GRINQH_SHARED_DIR), which is absent";                      \
  } while (0)
