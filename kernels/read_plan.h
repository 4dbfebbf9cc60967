// The read plan: what one graded matvec call reads, listed once per call, so the matvec's
// inner loop does no per-channel bookkeeping. Shared by the kernel that builds it
// (read_plan.cu) and the matvec that follows it (graded_matvec.cu). Plain C++.
//
// An "entry" is one plane of one input channel: a run of TilePlaneBytes(tile) bytes in
// every row tile (kernels/gpu_bit_planes.h). A channel read at level b is b entries, so a
// call reads exactly the entries in its plan. Entries are listed per "set" of consecutive
// groups and padded to a multiple of 32 (the k of one tensor-core step); the padding
// entries point at run 0 and carry zero activations.
//
// Each entry carries its activation for the matvec's integer MMA: x_k · 2^(−j) (plane j)
// as a 16-bit integer, relative to the largest |x| the entry's group reads, split into a
// high and a low signed byte (value = 256·high + low). The MMA's 8 output columns hold
// (group of the set, batch row, high/low), so one step serves a set's groups or a small
// batch's rows at once, and each column's sum stays one group's (its scale and zero
// apply after):
//
//   batch rows per chunk (1..4)   1  2  3  4
//   groups per set                4  2  1  1
//   column pair t = q·rows + b    q = group within the set, b = batch row
//
// Batches of more than 4 rows are cut into chunks of 4, each with its own plan.
//
// Per (chunk, set), in the workspace:
//   counts  int32              entries, padding included (a multiple of 32)
//   fold    float4 [4]         per column pair t: {x_scale, centre_sum, read_sum, 0}:
//                              x_scale = max|x| / kCodedMax · 2^(code_bits − 1)
//                              turns the integer sum into Σ x_k · top_b(q) for one row;
//                              centre_sum = Σ x_k · centre(b_k), read_sum = Σ x_k over
//                              the channels read (the zero-point and rounding terms)
//   runs    uint16 [capacity]  entry e's run: (k − first channel of the set) · planes + j
//   coded   int8 [capacity/32][8][32]  step s, column n, entry 32s + i's coded activation
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gpu_bit_planes.h"
#include "kernels/graded_matvec.h"  // kMaxGradedBatch

namespace grinqh::cuda {

inline constexpr int kPlanStepEntries = 32;  // k of one m16n8k32 integer MMA
inline constexpr int kPlanMaxRows = 4;       // batch rows per plan chunk
inline constexpr int kCodedMax = 32639;      // |coded| bound: 256·127 + 127 after the split
inline constexpr int kMaxSetChannels = 1024; // groups per set × group size, at most

struct ReadPlanShape {
  int rows_per_chunk = 1;   // batch rows one plan serves (1..4)
  int chunks = 1;           // plans, one per 4 batch rows
  int groups_per_set = 4;
  int sets = 0;             // per chunk
  int set_channels = 0;     // groups_per_set · group_size
  int capacity = 0;         // entries per set, a multiple of 32: set_channels · planes
  size_t counts_at = 0, fold_at = 0, runs_at = 0, coded_at = 0, bytes = 0;  // offsets in the plan

  GRINQH_HOST_DEVICE int plans() const { return chunks * sets; }  // (chunk, set) pairs
};

GRINQH_HOST_DEVICE inline ReadPlanShape MakeReadPlanShape(const GpuPlaneShape& s, int batch) {
  ReadPlanShape p;
  p.rows_per_chunk = batch < kPlanMaxRows ? batch : kPlanMaxRows;
  p.chunks = (batch + kPlanMaxRows - 1) / kPlanMaxRows;
  p.groups_per_set = p.rows_per_chunk == 1 ? 4 : p.rows_per_chunk == 2 ? 2 : 1;
  p.sets = (s.groups() + p.groups_per_set - 1) / p.groups_per_set;
  p.set_channels = p.groups_per_set * s.group_size;
  p.capacity = (p.set_channels * s.planes + kPlanStepEntries - 1) / kPlanStepEntries * kPlanStepEntries;
  const size_t n = static_cast<size_t>(p.plans());
  auto align = [](size_t v) { return (v + 255) / 256 * 256; };
  p.counts_at = 0;
  p.fold_at = align(n * 4);
  p.runs_at = align(p.fold_at + n * 4 * 16);
  p.coded_at = align(p.runs_at + n * static_cast<size_t>(p.capacity) * 2);
  p.bytes = align(p.coded_at + n * static_cast<size_t>(p.capacity) * 8);
  return p;
}

// The centre of the dropped bits' interval, (2^(n−b) − 1) / 2: the value a code truncated
// to b of n bits stands for, as in the CPU product (engine/backends/cpu/bit_plane_matvec.h).
GRINQH_HOST_DEVICE inline float DroppedBitsCentre(int code_bits, int level) {
  return 0.5f * static_cast<float>((1 << (code_bits - level)) - 1);
}

// The workspace of one call: the plan first (so one plan serves matrices of different
// rows), then the arrival counters (at a fixed place for every batch size; every call
// leaves them at zero), then the partial sums of the split over sets.
GRINQH_HOST_DEVICE inline size_t CountersAt(const GpuPlaneShape& s) {
  size_t most = 0;
  for (int batch = 1; batch <= kMaxGradedBatch; ++batch) {
    const size_t bytes = MakeReadPlanShape(s, batch).bytes;
    most = bytes > most ? bytes : most;
  }
  return most;
}
GRINQH_HOST_DEVICE inline size_t CounterBytes(const GpuPlaneShape& s) {
  return (static_cast<size_t>(kMaxGradedBatch / kPlanMaxRows) * static_cast<size_t>(s.tiles()) * 2 * 4 + 255) / 256 * 256;
}

}  // namespace grinqh::cuda
