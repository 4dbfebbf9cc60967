// Reading GRINQH model files (.grinqh, docs/FORMAT.md): what a file holds, from its
// metadata. Model::Load reads the whole file (engine/model/grinqh_reader.cc); the writer is
// engine/calibration/grinqh_writer.h.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace grinqh {

// What a .grinqh file holds, from its metadata (the structure is checked, not the tensors).
struct GrinqhFileSummary {
  std::string method;     // "grinqh", "rtn", "gptq" or "awq"
  int bits = 0;           // stored planes: grinqh's deepest level, a baseline's code width
  int group_size = 0;
  std::vector<float> schedule_targets;  // grinqh with calibrated schedules: the targets fitted
  bool graded() const { return method == "grinqh"; }
};
absl::StatusOr<GrinqhFileSummary> ReadGrinqhSummary(const std::filesystem::path& path);

// "model.layers.0.mlp.up_proj.weight" → "model.layers.0.mlp.up_proj": a layer's tensors
// in the file are named after it.
std::string GrinqhLayerPrefix(const std::string& weight_name);

}  // namespace grinqh
