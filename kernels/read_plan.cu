// Builds the read plan (kernels/read_plan.h) from the layer input and its levels: one
// block per (set, chunk). The block loads its channels' levels and inputs, reduces each
// (group, batch row)'s largest |x| and correction sums in a fixed order (so results are
// deterministic), scans the channels' union levels into entry offsets, and writes every
// entry's run and coded activations.
#include <cuda_runtime.h>

#include "kernels/graded_matvec.h"
#include "kernels/read_plan.h"

namespace grinqh::cuda {
namespace {

constexpr int kPlanThreads = 256;
constexpr int kPlanWarps = kPlanThreads / 32;
constexpr int kChannelsPerThread = kMaxSetChannels / kPlanThreads;  // 4

struct PlanParams {
  GpuPlaneShape s;
  ReadPlanShape ps;
  int batch;
  const float* x;         // [batch][cols]
  const uint8_t* levels;  // [batch][cols], or null: uniform_level
  int uniform_level;
  uint8_t* plan;
};

__global__ void __launch_bounds__(kPlanThreads) BuildReadPlanKernel(const PlanParams p) {
  const GpuPlaneShape& s = p.s;
  const ReadPlanShape& ps = p.ps;
  const int set = blockIdx.x, chunk = blockIdx.y, plan = chunk * ps.sets + set;
  const int rows = ps.rows_per_chunk, row0 = chunk * kPlanMaxRows;
  const int k0 = set * ps.set_channels;
  const int channels = min(ps.set_channels, s.cols - k0);
  const int pairs = ps.groups_per_set * rows;  // column pairs in use

  __shared__ uint8_t level[kPlanMaxRows][kMaxSetChannels];
  __shared__ float xs[kPlanMaxRows][kMaxSetChannels];
  __shared__ float4 stat[4];  // per column pair: {max |x|, centre sum, read sum, 0}
  __shared__ int warp_total[kPlanWarps];
  __shared__ int first[kMaxSetChannels];  // each channel's first entry

  for (int c = threadIdx.x; c < ps.set_channels; c += kPlanThreads) {
    for (int b = 0; b < rows; ++b) {
      const int row = row0 + b;
      const bool in = c < channels && row < p.batch;
      const size_t at = size_t(row) * size_t(s.cols) + size_t(k0 + c);
      const int lv = !in ? 0 : p.levels ? p.levels[at] : p.uniform_level;
      level[b][c] = static_cast<uint8_t>(min(lv, s.planes));
      xs[b][c] = in ? p.x[at] : 0.f;
    }
  }
  __syncthreads();

  // Per column pair (group q, batch row b): one warp, lanes striding the group's channels,
  // then a fixed shuffle tree.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t = warp; t < pairs; t += kPlanWarps) {
    const int q = t / rows, b = t % rows;
    float top = 0.f, centre = 0.f, read = 0.f;
    for (int c = q * s.group_size + lane; c < (q + 1) * s.group_size; c += 32) {
      const int lv = level[b][c];
      if (lv == 0) continue;
      const float v = xs[b][c];
      top = fmaxf(top, fabsf(v)), centre = fmaf(v, DroppedBitsCentre(s.code_bits, lv), centre), read += v;
    }
    for (int o = 16; o > 0; o /= 2) {
      top = fmaxf(top, __shfl_xor_sync(~0u, top, o));
      centre += __shfl_xor_sync(~0u, centre, o);
      read += __shfl_xor_sync(~0u, read, o);
    }
    if (lane == 0) stat[t] = make_float4(top, centre, read, 0.f);
  }

  // Entry offsets: each thread takes kChannelsPerThread consecutive channels; a block scan
  // of their union levels (the deepest any batch row reads).
  const int c0 = threadIdx.x * kChannelsPerThread;
  int depth[kChannelsPerThread], mine = 0;
#pragma unroll
  for (int i = 0; i < kChannelsPerThread; ++i) {
    depth[i] = 0;
    if (c0 + i < ps.set_channels) {
      for (int b = 0; b < rows; ++b) depth[i] = max(depth[i], int(level[b][c0 + i]));
    }
    mine += depth[i];
  }
  int inclusive = mine;
  for (int o = 1; o < 32; o *= 2) {
    const int v = __shfl_up_sync(~0u, inclusive, o);
    if (lane >= o) inclusive += v;
  }
  if (lane == 31) warp_total[warp] = inclusive;
  __syncthreads();
  int offset = inclusive - mine, total = 0;
  for (int w = 0; w < kPlanWarps; ++w) {
    if (w < warp) offset += warp_total[w];
    total += warp_total[w];
  }
  const int padded = (total + kPlanStepEntries - 1) / kPlanStepEntries * kPlanStepEntries;

  int* counts = reinterpret_cast<int*>(p.plan + ps.counts_at);
  float4* fold = reinterpret_cast<float4*>(p.plan + ps.fold_at) + size_t(plan) * 4;
  uint16_t* runs = reinterpret_cast<uint16_t*>(p.plan + ps.runs_at) + size_t(plan) * ps.capacity;
  int8_t* coded = reinterpret_cast<int8_t*>(p.plan + ps.coded_at) + size_t(plan) * ps.capacity * 8;
  if (threadIdx.x == 0) counts[plan] = padded;
  const float top_weight = static_cast<float>(1 << (s.code_bits - 1));
  if (threadIdx.x < 4) {
    const int t = threadIdx.x;
    const float4 st = t < pairs ? stat[t] : make_float4(0.f, 0.f, 0.f, 0.f);
    fold[t] = make_float4(st.x / kCodedMax * top_weight, st.y, st.z, 0.f);
  }
  // Coding factor per column pair: coded = rint(x · 2^(−j) · kCodedMax / max|x|).
  float inv_top[4];
#pragma unroll
  for (int t = 0; t < 4; ++t) inv_top[t] = t < pairs && stat[t].x > 0.f ? kCodedMax / stat[t].x : 0.f;

  // Every entry, one per thread in order (so a warp writes 32 consecutive bytes of each
  // column): its channel is the last whose first entry is at or before it.
#pragma unroll
  for (int i = 0; i < kChannelsPerThread; ++i) {
    if (c0 + i < ps.set_channels) first[c0 + i] = offset;
    offset += depth[i];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < padded; e += kPlanThreads) {
    int c = -1, j = 0;
    if (e < total) {
      int lo = 0, hi = ps.set_channels;  // first[lo] <= e < first[hi]
      while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (first[mid] <= e) lo = mid; else hi = mid;
      }
      c = lo, j = e - first[lo];
    }
    runs[e] = static_cast<uint16_t>(c < 0 ? 0 : c * s.planes + j);  // padding: run 0
    int8_t* step = coded + size_t(e / kPlanStepEntries) * 8 * kPlanStepEntries + e % kPlanStepEntries;
    const int q = c < 0 ? -1 : c / s.group_size;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      const int t = n / 2, b = t % rows;
      int value = 0;
      if (c >= 0 && t < pairs && t / rows == q && j < level[b][c]) {
        const float scaled = xs[b][c] * inv_top[t] * __int_as_float((127 - j) << 23);  // · 2^(−j)
        const int v = max(-kCodedMax, min(kCodedMax, __float2int_rn(scaled)));
        const int high = (v + 128) >> 8;
        value = n % 2 == 0 ? high : v - 256 * high;
      }
      step[n * kPlanStepEntries] = static_cast<int8_t>(value);
    }
  }
}

}  // namespace

const char* PlanGradedReads(const GpuPlaneShape& s, int batch, const float* x, const uint8_t* levels,
                            int uniform_level, void* workspace, Stream stream) {
  if (s.rows <= 0 || s.cols <= 0 || batch <= 0) return nullptr;
  const ReadPlanShape ps = MakeReadPlanShape(s, batch);
  if (batch > kMaxGradedBatch || s.planes < 1 || s.planes > 8 || s.planes > s.code_bits || s.code_bits > 8 ||
      uniform_level < 0 || uniform_level > s.planes || ps.set_channels > kMaxSetChannels) {
    return "PlanGradedReads: unsupported shape, batch or level";
  }
  const PlanParams p{s, ps, batch, x, levels, uniform_level, static_cast<uint8_t*>(workspace)};
  BuildReadPlanKernel<<<dim3(unsigned(ps.sets), unsigned(ps.chunks)), kPlanThreads, 0, stream>>>(p);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace grinqh::cuda
