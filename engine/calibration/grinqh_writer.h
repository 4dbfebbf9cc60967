// GRINQH model files (.grinqh, docs/FORMAT.md) from Hugging Face checkpoints: GRINQH's
// nested store with its calibrated decode schedules, or a fixed-width baseline (RTN, GPTQ,
// AWQ) in the same format, written here; reading is Model::Load's .grinqh path
// (engine/model/grinqh_model.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/calibration/calibration.h"
#include "engine/calibration/calibration_schedule.h"
#include "engine/model/grinqh_model.h"

namespace grinqh {

inline constexpr int kGrinqhGroupSize = 256;
inline constexpr int kBaselineGroupSize = 128;

struct GrinqhQuantizeOptions {
  std::string method = "grinqh";  // grinqh | rtn | gptq | awq
  int bits = 0;                   // rtn, gptq, awq: the code width, 1..8 (grinqh: unused)
  // Input channels per (row, group) scale and zero; 0: the method's default. GRINQH's is
  // 256: every group read costs 24 bits per row, and at 2 effective bits the bits saved
  // buy more than the coarser groups lose; at 3–4 bits 128 is about 2 % better (measured,
  // docs/BENCHMARKS.md). The baselines keep the 128 their papers use.
  int group_size = 0;
  int max_bits = 8;               // grinqh: planes stored, the deepest level decode can read
  // Calibration text: grinqh fits its decode schedules on it (without it, every layer reads
  // the model-wide target); gptq and awq need it.
  std::filesystem::path calib;
  int calib_windows = 64;   // the first windows of the text,
  int window_tokens = 512;  // of this many tokens each (docs/METHOD.md §3)
  ScheduleFitOptions schedule;
  int num_threads = 0;  // 0: one per core
};

// Quantizes every linear layer of the model in `hf_dir` (the LM head too, untied from the
// embedding) and writes `out`, self-contained: config, tokenizer, the embedding and norms
// as stored, each layer's bit planes, scales and zeros (grinqh: and its grading statistic),
// and the metadata (method, parameters, schedules, calibration summary).
absl::Status QuantizeToGrinqhFile(const std::filesystem::path& hf_dir, GrinqhQuantizeOptions options,
                                  const std::filesystem::path& out, const ProgressFn& progress = {});

}  // namespace grinqh
