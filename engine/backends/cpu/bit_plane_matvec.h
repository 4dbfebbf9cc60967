// GRINQH's decode product on the CPU: y = W x for one input row whose channels are read
// at graded levels, straight from the nested bit-plane store (engine/quant/bit_planes.h).
//
// Channel k at level b reads exactly its top b planes — b · tile_rows/8 contiguous bytes
// per tile — and nothing of a level-0 channel. Within a group (where every row has one
// scale s and zero z) the product splits as
//   y_r += s_rg · (Σ_k x_k · T_b(q_rk) − z_rg · Σ_k x_k),   T_b(q) = top_b(q) + c_b,
// and Σ_k x_k · top_b(q_rk) = Σ_k Σ_{j<b} x_k 2^(7−j) · plane_j(r, k): per plane, one masked
// add of a broadcast value over the tile's rows (16 rows per AVX-512 instruction).
#pragma once

#include <cstdint>

#include "engine/quant/bit_planes.h"
#include "engine/base/thread_pool.h"

namespace grinqh::cpu {

// levels[k] in 0..w.shape.stored_planes for each of the w.shape.cols input channels.
// The work splits over the tiles of output rows.
void BitPlaneMatVec(ThreadPool& pool, const BitPlaneView& w, const float* x, const uint8_t* levels, float* y);
// The same on the calling thread (many rows at once split over rows instead).
void BitPlaneMatVec(const BitPlaneView& w, const float* x, const uint8_t* levels, float* y);

// Bytes that BitPlaneMatVec reads for these levels: of planes, and of the scales and zeros
// of every group with a channel read — the honest "effective bits" numerator.
struct ReadBytes {
  size_t planes = 0, params = 0;
};
ReadBytes CountReadBytes(const BitPlaneShape& shape, const uint8_t* levels);

}  // namespace grinqh::cpu
