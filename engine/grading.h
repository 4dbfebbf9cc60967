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

namespace grinqh {

// levels[k] for one row. `channel_scale` is c_k (e.g. the column norm of the weights).
// `target` is the average level wanted, in [0, max_level].
void GradeRow(std::span<const float> x, std::span<const float> channel_scale, float target, int max_level,
              std::span<uint8_t> levels);

}  // namespace grinqh
