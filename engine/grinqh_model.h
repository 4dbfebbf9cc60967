// Writing a GRINQH model file (.grinqh, docs/FORMAT.md) from a Hugging Face checkpoint.
// Reading one back is Model::Load's .grinqh path (engine/grinqh_model.cc).
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace grinqh {

struct GrinqhQuantizeOptions {
  int group_size = 128;  // input channels per fp16 scale and zero
  int max_bits = 8;      // planes stored: the deepest level decode can read
};

// Quantizes every linear layer of the model in `hf_dir` (the LM head too, untied from the
// embedding) to nested 8-bit codes and writes `out`, self-contained: config, tokenizer,
// the embedding and norms as stored, the bit planes, scales, zeros and grading statistics.
absl::Status QuantizeToGrinqhFile(const std::filesystem::path& hf_dir, const GrinqhQuantizeOptions& options,
                                  const std::filesystem::path& out,
                                  const std::function<void(const std::string& stage, double fraction)>& progress = {});

}  // namespace grinqh
