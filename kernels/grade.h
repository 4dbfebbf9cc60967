// GRINQH's grading on the GPU: the level (0..max_level) of every input channel of one
// layer input row, exactly as the CPU grader assigns it (engine/quant/grading.h,
// GradeRow): importance s_k = |x_k| · c_k, water level t found by the same bisection,
// the same rounding, the remainder of the budget to the channels closest to rounding up.
// Plain C++: callers need no CUDA headers. Device pointers; asynchronous on `stream`;
// returns a CUDA error string or nullptr.
//
// Equality with the CPU grader is exact except where two floating-point results can
// differ: log2 s_k is computed in double and rounded to float (glibc's log2f differs from
// the correctly rounded value in ~1.5e-4 of inputs, by one ulp), so a level can differ
// when log2 s_k − t lies within an ulp of a rounding boundary (about 1e-10 per channel),
// and the remainder goes to the lowest index among exactly equal candidates (the CPU's
// nth_element picks any).
#pragma once

#include <cstdint>

#include "kernels/graded_matvec.h"  // Stream

namespace grinqh::cuda {

// rows rows of cols channels: x [rows][cols] fp32, channel_scale [cols] fp16 bits,
// targets [rows] (each row's average level, 0..max_level), thresholds null (plain
// rounding) or max_level ascending values (calibrated level thresholds), levels
// [rows][cols] out. cols ≤ kMaxGradeCols.
inline constexpr int kMaxGradeCols = 32768;
const char* GradeRows(const float* x, const uint16_t* channel_scale, int rows, int cols, const float* targets,
                      int max_level, const float* thresholds, uint8_t* levels, Stream stream);

}  // namespace grinqh::cuda
