// GRINQH's decode product on the GPU: y = W x with every input channel read at its own
// level (0..planes bits), straight from the GPU bit-plane layout (kernels/gpu_bit_planes.h).
// Plain C++: callers need no CUDA headers. All pointers are device pointers; every call is
// asynchronous on `stream` and returns a CUDA error string, or nullptr on success.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gpu_bit_planes.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace grinqh::cuda {

using Stream = CUstream_st*;

// Scratch: the read plan (kernels/read_plan.h), arrival counters and the partial sums of
// the split over input channels, enough for any batch size up to `batch`. Allocate
// GradedMatVecWorkspaceBytes, zero it once (cudaMemset) before its first use; every call
// leaves the counters at zero again. One workspace per stream.
size_t GradedMatVecWorkspaceBytes(const GpuPlaneShape& shape, int batch = 1);

// Batch 1. levels[k] in 0..shape.planes for each input channel (level 0: the channel is
// skipped, its planes and, for a group skipped whole, its scales are not read). With
// `levels` null every channel reads `uniform_level` planes: the full-depth path (8 for
// GRINQH's 8-bit store, N for a baseline's N-bit store). y has shape.rows floats.
const char* GradedMatVec(const GpuPlaneMatrix& w, const float* x, const uint8_t* levels, int uniform_level, float* y,
                         void* workspace, Stream stream);

// Small batch (1..kMaxGradedBatch rows, each with its own levels): x is [batch][cols],
// levels [batch][cols], y [batch][rows]. Each channel is read to the deepest level any row
// of its chunk of four needs; each row applies only its own levels.
inline constexpr int kMaxGradedBatch = 16;
const char* GradedMatVecBatch(const GpuPlaneMatrix& w, int batch, const float* x, const uint8_t* levels, float* y,
                              void* workspace, Stream stream);

// The two halves of every call above, for callers that plan once for several matrices of
// the same input (q/k/v, gate/up: same cols, planes, code width and group size) or time
// them apart: PlanGradedReads lists the entries (channel planes) to read and codes the
// activations into the workspace; GradedMatVecFromPlan reads them. The matrix's shape must
// equal the planned one in everything but rows, and `batch` must match.
const char* PlanGradedReads(const GpuPlaneShape& shape, int batch, const float* x, const uint8_t* levels,
                            int uniform_level, void* workspace, Stream stream);
const char* GradedMatVecFromPlan(const GpuPlaneMatrix& w, int batch, float* y, void* workspace, Stream stream);

// Prefill: the full-depth weights as bf16, [rows][cols] row-major, into a caller's
// workspace of rows·cols bf16 values (e.g. one layer at a time), for a dense GEMM.
const char* DequantizeToBf16(const GpuPlaneMatrix& w, uint16_t* out, Stream stream);

}  // namespace grinqh::cuda
