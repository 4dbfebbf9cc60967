// Model config loading: config.json text (and generation_config.json after a NUL byte).
// A config that loads must give the engine sane shapes and rope frequencies.
#include <cmath>
#include <cstdint>

#include "engine/model/model_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  const auto [config_json, generation_config_json] = fuzz::SplitAtNul(data, size);
  auto config = ModelConfig::FromJson(config_json, generation_config_json);
  if (!config.ok()) return 0;
  GRINQH_FUZZ_CHECK(config->hidden_size > 0 && config->num_layers > 0 && config->vocab_size > 0);
  GRINQH_FUZZ_CHECK(config->num_heads > 0 && config->num_kv_heads > 0 && config->head_dim > 0);
  GRINQH_FUZZ_CHECK(config->num_heads % config->num_kv_heads == 0);
  // The rope table is head_dim / 2 floats; a config may only load if that is affordable.
  if (config->head_dim <= (1 << 16)) {
    for (const float f : RopeInverseFrequencies(*config)) GRINQH_FUZZ_CHECK(std::isfinite(f));
  }
  return 0;
}
