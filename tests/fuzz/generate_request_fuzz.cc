// Request validation: a serialized GenerateRequest (as a client sends it over gRPC) checked
// and resolved by the server (ResolveGenerateRequest) against the bundled model and the
// default config; a request it accepts must also pass the engine's own check
// (ValidateRequest), which the scheduler runs again before admitting it.
#include <cstdint>
#include <memory>

#include "engine/serving/generator.h"
#include "engine/serving/model.h"
#include "grinqh/v1/inference.pb.h"
#include "server/config.h"
#include "server/generate_request.h"
#include "tests/fuzz/fuzz_util.h"

namespace grinqh::fuzz {
namespace {

const Model& BundledModel() {
  static const Model* const model = [] {
    ModelOptions options;
    options.name = "cpu";
    options.num_threads = 1;
    auto loaded = Model::Load(SourceDir() / "models" / "tiny-llama3", options);
    GRINQH_FUZZ_CHECK(loaded.ok());
    return loaded->release();
  }();
  return *model;
}

}  // namespace
}  // namespace grinqh::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  v1::GenerateRequest proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  static const ServerConfig config;
  const Model& model = fuzz::BundledModel();
  // Both kinds of `auto` tier: full depth (an idle server) and lowered by the autoscaler.
  for (const float auto_bits : {kFullDepthBits, 3.0f}) {
    auto resolved = ResolveGenerateRequest(proto, model, "tiny-llama3", config, auto_bits);
    if (!resolved.ok()) continue;
    const absl::Status valid = ValidateRequest(model, resolved->request);
    if (!valid.ok()) std::fprintf(stderr, "resolved request refused by the engine: %s\n", valid.ToString().c_str());
    GRINQH_FUZZ_CHECK(valid.ok());
  }
  return 0;
}
