// GRINQH's grading rule: which level (0..max_level bits) each input channel of a linear
// layer is read at, for one input row, given a target average level.
//
// Reverse water-filling (rate-distortion for independent components): channel k has
// importance s_k = |x_k| · c_k, where c_k is a per-channel weight statistic, and gets
//   b_k = clip(round(log2 s_k − t), 0, max_level)
// with the water level t chosen per row. The rounding leaves some of the budget
// unspent; it goes, one bit each, to the channels that rounding cut the most, so every
// row spends exactly round(target · K) bits.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace grinqh {

// levels[k] for one row. `channel_scale` is c_k (e.g. the column norm of the weights) as
// fp16 bits: a decode step reads it whole, so it is kept at the precision ranking needs.
// `target` is the average level wanted, in [0, max_level].
// `thresholds` (empty, or max_level ascending values): channel k reads level b when
// log2 s_k − t ≥ thresholds[b−1], the layer's calibrated level thresholds (LevelThresholds
// in engine/calibration/calibration.h); empty means thresholds[b−1] = b − ½, plain rounding.
void GradeRow(std::span<const float> x, std::span<const uint16_t> channel_scale, float target, int max_level,
              std::span<uint8_t> levels, std::span<const float> thresholds = {});

}  // namespace grinqh

namespace grinqh {

// The same budget, allocated by each channel's measured error curve instead of a single
// statistic: gains[k·max_level + b−1] = E_k(b−1) − E_k(b), the drop in the column's squared
// error from reading level b instead of b−1. Channel k reads every level whose gain,
// weighted by x_k², reaches a common threshold λ (the Lagrangian of min Σ x_k² E_k(b_k)
// subject to Σ b_k = budget); λ is found by bisection, the remainder spent greedily.
void GradeRowByGains(std::span<const float> x, std::span<const float> gains, float target, int max_level,
                     std::span<uint8_t> levels);

}  // namespace grinqh

namespace grinqh {

// A layer's calibrated share of the model-wide target (engine/quant/grading_schedule.h):
// when the model reads model_targets[i] bits per weight on average, this layer reads
// budgets[i]. Between fitted targets the budget is interpolated linearly, which keeps the
// model-wide average exact (the constraint is linear); below the first target every
// budget shrinks in proportion (the same holds). Empty: the layer reads the model-wide
// target itself (uniform budgets).
struct LayerSchedule {
  std::vector<float> model_targets;  // ascending
  std::vector<float> budgets;        // one per model target, each in (0, max_level]

  bool empty() const { return model_targets.empty(); }
  // 0 (full depth) stays 0.
  float LayerTarget(float model_target) const;
};

}  // namespace grinqh
