// `grinqh client --models`: the served models as a table a person reads, or as JSON (the
// proto's JSON mapping, so it follows the API's fields as they are added).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "grinqh/v1/inference.pb.h"

namespace grinqh {

// One row per model: name, architecture, backend, context length, vocabulary, layers, stored
// bits, quantization, chat format and the tiers with their bits ("full": the stored depth).
std::string FormatModelTable(const v1::ListModelsResponse& models);
absl::StatusOr<std::string> FormatModelJson(const v1::ListModelsResponse& models);

}  // namespace grinqh
