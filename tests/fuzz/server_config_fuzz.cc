// Server config loading: arbitrary YAML as config/grinqh.yaml. A config that loads passes
// CheckConfig, and FormatServerConfig writes it back as YAML that reads to an equal config
// (server/config.h promises both).
#include <cstdint>
#include <string>

#include "server/config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto config = ParseServerConfig(yaml, "fuzz.yaml");
  if (!config.ok()) return 0;
  GRINQH_FUZZ_CHECK(CheckConfig(*config).ok());
  const std::string formatted = FormatServerConfig(*config);
  auto reread = ParseServerConfig(formatted, "formatted.yaml");
  if (!reread.ok()) {
    std::fprintf(stderr, "formatted config does not read back: %s\n%s\n", reread.status().ToString().c_str(),
                 formatted.c_str());
  }
  GRINQH_FUZZ_CHECK(reread.ok());
  GRINQH_FUZZ_CHECK(*reread == *config);
  return 0;
}
