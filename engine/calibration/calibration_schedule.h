// Fitting GRINQH's decode schedules on calibration text (docs/METHOD.md §2: "a schedule maps a
// target average bit width B to ... per layer; fitted offline to minimize output error").
//
// Two passes over the calibration windows, on the unquantized model:
//  1. Error curves. At every linear layer, sampled input rows are graded by the decode rule
//     (GradeRow) at each budget b of a grid and multiplied through the nested store
//     (BitPlaneMatVec): E_l(b) = mean ‖W x − Ŵ_b(x) x‖² against the checkpoint's weights.
//  2. Sensitivity. How much a unit of that output error moves the model's output differs
//     from layer to layer, so each layer alone is perturbed by a probe (its RTN weights at
//     a fixed width) on a few windows: s_l = KL(reference ‖ probed) / (the probe's output
//     error ‖ΔW x‖²), KL per unit of output error.
// The schedules are the budgets that minimize Σ_l s_l · E_l(b_l) at each model-wide
// target with the weight-count-weighted average held exactly (engine/quant/grading_schedule.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/calibration/calibration.h"
#include "engine/serving/model.h"
#include "engine/model/weights.h"

namespace grinqh {

struct ScheduleFitOptions {
  float budget_step = 0.25f;  // the grid of layer budgets: step, 2·step, ..., max level
  float min_target = 1.5f;    // model-wide targets fitted: min_target, + target_step, ..., max level
  float target_step = 0.25f;
  int sample_stride = 64;       // every sample_stride-th row of each window feeds the error curves
  int sensitivity_windows = 4;  // the first windows, for the sensitivity probes
  int probe_bits = 3;           // the probe: RTN at this width (group size of the nested store)
  bool use_sensitivity = true;  // false: minimize Σ E_l(b_l), every layer's error counted alike
  int num_threads = 0;          // 0: one per core
};

struct LayerFit {
  std::string name;
  int64_t weights = 0;
  std::vector<double> error;  // E_l at each grid budget
  double probe_error = 0;     // mean ‖ΔW x‖² of the probe, per row of the sensitivity windows
  double probe_kld = 0;       // mean KL(reference ‖ model with only this layer probed)
  double sensitivity = 1;     // probe_kld / probe_error (1 without sensitivity)
  std::vector<float> budgets; // one per model-wide target
};

struct ScheduleFit {
  std::vector<float> grid;           // layer budgets measured
  std::vector<float> model_targets;  // model-wide targets fitted
  std::vector<LayerFit> layers;      // in LinearLayers order
  int windows = 0;                   // calibration windows used for the error curves
  int sensitivity_windows = 0;
  int64_t rows_sampled = 0;          // input rows per layer behind each error curve
  double seconds = 0;
};

// `nested[i]` is the nested store of LinearLayers(...)[i] of `reference` (the model it was
// quantized from, run unquantized here).
absl::StatusOr<ScheduleFit> FitSchedules(const Model& reference, std::span<const PlaneWeights* const> nested,
                                         std::span<const std::vector<int32_t>> windows,
                                         const ScheduleFitOptions& options, const ProgressFn& progress = {});

}  // namespace grinqh
