// GRINQH's grading on the GPU, one block of 1024 threads per input row, mirroring
// GradeRow (engine/quant/grading.cc) step by step so the levels come out the same:
//
//  1. log2 s_k for the thread's channels k = i·1024 + thread (kept in registers), and
//     the row's extremes lo, hi over the channels with s_k > 0;
//  2. the budget round(target · K) and the same float bisection for the water level t
//     (the same midpoints, the same stopping rule); each step's total is one pass over
//     the registers and one block sum (a warp reduction instruction, one barrier);
//  3. levels at t, and what is left of the budget goes to the channels closest to rounding
//     up. Those all lie in the last bisection window (key ≥ t_over − t_fits), usually a
//     handful: they are gathered in shared memory and ranked against each other. When the
//     window holds too many (ties, degenerate rows), a 32-step radix select over all
//     candidates does the same job.
//
// Measured (docs/BENCHMARKS.md, H200): 13–14 µs per row at K = 4,096 and 36–40 µs at
// 14,336, against a budget of 2 and 3 µs. One block is one SM. A row that skips the
// bisection (target 8) takes 6.2 / 14.9 µs, of which the double-precision log2 (kept for
// exactness) is ~2 / ~4 µs (measured against float log2f); the ~12 bisection rounds, each
// a block-wide reduction over all K channels, take the other ~7.5 / ~23 µs (Nsight
// Compute: 379 thread instructions per channel at K = 4,096, issue slots 47 % busy). Rows of a batch run in
// parallel (16 rows cost what one does). Meeting the budget needs the grading fused where
// x is produced (docs/METHOD.md §2), not a faster standalone kernel.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/grade.h"

namespace grinqh::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kWindowCapacity = 2048;

struct GradeParams {
  const float* x;
  const uint16_t* channel_scale;
  int cols;
  const float* targets;
  int max_level;
  const float* thresholds;  // null: plain rounding
  uint8_t* levels;
};

__device__ __forceinline__ float HalfBitsToFloat(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// GradeRow's LevelAt and NextThreshold.
__device__ __forceinline__ int LevelAt(float v, const GradeParams& p) {
  if (p.thresholds == nullptr) return static_cast<int>(fminf(fmaxf(floorf(v + 0.5f), 0.f), static_cast<float>(p.max_level)));
  int b = 0;
  while (b < p.max_level && v >= p.thresholds[b]) ++b;
  return b;
}
__device__ __forceinline__ float NextThreshold(const GradeParams& p, int level) {
  return p.thresholds == nullptr ? static_cast<float>(level) + 0.5f : p.thresholds[level];
}

// LevelAt with plain rounding, as a float and without conversion instructions (F2I and
// FRND issue at a quarter of the FADD rate and dominated the bisection): for y = v + ½
// (rounded as GradeRow rounds it), clamp(floor(y), 0, max) = floor(clamp(y, 0, max + ½)),
// and floor of a float in [0, 9) is round-to-nearest by the 1.5·2^23 trick, minus one where
// that rounded up. Exact for every float (−inf reads 0).
__device__ __forceinline__ float RoundedLevel(float v, float max_level_plus_half) {
  const float y = fminf(fmaxf(v + 0.5f, 0.f), max_level_plus_half);
  const float nearest = (y + 12582912.f) - 12582912.f;
  return nearest > y ? nearest - 1.f : nearest;
}

// Floats as integers of the same order (finite values).
__device__ __forceinline__ int OrderedInt(float f) {
  const int i = __float_as_int(f);
  return i >= 0 ? i : i ^ 0x7fffffff;
}
__device__ __forceinline__ float FromOrderedInt(int i) { return __int_as_float(i >= 0 ? i : i ^ 0x7fffffff); }
__device__ __forceinline__ unsigned OrderedUint(float f) {
  const unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Block-wide sums, one barrier each: warps reduce with one instruction, write their sum
// to one of two alternating slot arrays, and every warp reads all of them back.
struct BlockSum {
  int* slots;  // [2][kWarps] in shared memory
  int parity = 0;
  __device__ int operator()(int v) {
    v = static_cast<int>(__reduce_add_sync(~0u, static_cast<unsigned>(v)));
    if (threadIdx.x % 32 == 0) slots[parity * kWarps + threadIdx.x / 32] = v;
    __syncthreads();
    const int total = static_cast<int>(__reduce_add_sync(~0u, static_cast<unsigned>(slots[parity * kWarps + threadIdx.x % 32])));
    parity ^= 1;
    return total;
  }
};

template <int kItems>
__global__ void __launch_bounds__(kThreads) GradeRowsKernel(const GradeParams p) {
  __shared__ int sum_slots[2 * kWarps];
  __shared__ int window_size;
  __shared__ float window_key[kWindowCapacity];
  __shared__ int window_index[kWindowCapacity];
  BlockSum block_sum{sum_slots};
  const int row = blockIdx.x, n = p.cols;
  const float* x = p.x + size_t(row) * n;
  uint8_t* levels = p.levels + size_t(row) * n;
  const auto channel = [&](int i) { return i * kThreads + static_cast<int>(threadIdx.x); };

  // 1. log2 s_k, rounded from double (see grade.h), and the extremes.
  float log_s[kItems];
  int lo = 0x7fffffff, hi = -0x7fffffff;  // ordered ints of floats
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int k = channel(i);
    log_s[i] = -INFINITY;
    if (k < n) {
      const float s = fabsf(x[k]) * HalfBitsToFloat(p.channel_scale[k]);
      if (s > 0) {
        log_s[i] = static_cast<float>(log2(static_cast<double>(s)));
        lo = min(lo, OrderedInt(log_s[i])), hi = max(hi, OrderedInt(log_s[i]));
      }
    }
  }
  lo = __reduce_min_sync(~0u, lo), hi = __reduce_max_sync(~0u, hi);
  if (threadIdx.x % 32 == 0) sum_slots[threadIdx.x / 32] = lo, sum_slots[kWarps + threadIdx.x / 32] = hi;
  __syncthreads();
  lo = __reduce_min_sync(~0u, sum_slots[threadIdx.x % 32]), hi = __reduce_max_sync(~0u, sum_slots[kWarps + threadIdx.x % 32]);
  __syncthreads();
  const long long budget = llround(static_cast<double>(p.targets[row]) * static_cast<double>(n));
  if (budget <= 0 || hi < lo) {
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (channel(i) < n) levels[channel(i)] = 0;
    }
    return;
  }
  const float lo_f = FromOrderedInt(lo), hi_f = FromOrderedInt(hi);

  // 2. The water level, by GradeRow's bisection.
  const float max_plus_half = static_cast<float>(p.max_level) + 0.5f;
  const auto total_at = [&](float t) {
    int total = 0;
    if (p.thresholds == nullptr) {
      float sum = 0.f;  // ≤ 8 · kItems: exact
#pragma unroll
      for (int i = 0; i < kItems; ++i) sum += RoundedLevel(log_s[i] - t, max_plus_half);
      total = static_cast<int>(sum);
    } else {
#pragma unroll
      for (int i = 0; i < kItems; ++i) total += LevelAt(log_s[i] - t, p);
    }
    return block_sum(total);
  };
  float t_fits = hi_f + 1.5f - NextThreshold(p, 0);
  float t_over = lo_f - 1.5f - NextThreshold(p, p.max_level - 1);
  if (total_at(t_over) <= budget) t_fits = t_over;
  for (int i = 0; i < 40 && t_fits - t_over > 1.f / 64; ++i) {
    const float mid = 0.5f * (t_fits + t_over);
    if (total_at(mid) <= budget) {
      t_fits = mid;
    } else {
      t_over = mid;
    }
  }

  // 3. Levels at the water level, then the remainder.
  int level[kItems], spent = 0;
#pragma unroll
  for (int i = 0; i < kItems; ++i) spent += level[i] = LevelAt(log_s[i] - t_fits, p);
  spent = block_sum(spent);
  long long left = budget - spent;
  // Candidates: below the deepest level with s_k > 0; key = how close to moving up.
  float key[kItems];
  bool candidate[kItems];
  int candidates = 0, in_window = 0;
  const float window = (t_over - t_fits) * 1.0001f - 1e-6f;  // every raised channel has key ≥ window
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    candidate[i] = left > 0 && level[i] < p.max_level && log_s[i] != -INFINITY;
    key[i] = candidate[i] ? log_s[i] - t_fits - NextThreshold(p, level[i]) : -INFINITY;
    candidates += candidate[i];
    in_window += candidate[i] && key[i] >= window;
  }
  if (left > 0) {
    candidates = block_sum(candidates);
    in_window = block_sum(in_window);
    if (left > candidates) left = candidates;
  }
  if (left > 0 && in_window >= left && in_window <= kWindowCapacity) {
    // Rank the window's channels: by key, then by index.
    __shared__ bool raised[kWindowCapacity];
    int slot_of[kItems];
    if (threadIdx.x == 0) window_size = 0;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      slot_of[i] = -1;
      if (candidate[i] && key[i] >= window) {
        slot_of[i] = atomicAdd(&window_size, 1);
        window_key[slot_of[i]] = key[i], window_index[slot_of[i]] = channel(i);
      }
    }
    __syncthreads();
    for (int a = threadIdx.x; a < in_window; a += kThreads) {
      int rank = 0;
      for (int b = 0; b < in_window; ++b) {
        rank += window_key[b] > window_key[a] || (window_key[b] == window_key[a] && window_index[b] < window_index[a]);
      }
      raised[a] = rank < left;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kItems; ++i) level[i] += slot_of[i] >= 0 && raised[slot_of[i]];
  } else if (left > 0) {
    // Radix select: the left-th largest key V, then every key above V and the lowest-index
    // ties at V.
    unsigned prefix = 0;
    for (int bit = 31; bit >= 0; --bit) {
      const unsigned trial = prefix | (1u << bit);
      int count = 0;
#pragma unroll
      for (int i = 0; i < kItems; ++i) count += candidate[i] && OrderedUint(key[i]) >= trial;
      if (block_sum(count) >= left) prefix = trial;
    }
    int above = 0;
#pragma unroll
    for (int i = 0; i < kItems; ++i) above += candidate[i] && OrderedUint(key[i]) > prefix;
    const long long ties_wanted = left - block_sum(above);
    long long ties_before = 0;  // ties at V with a lower index than item i of this thread
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const bool tie = candidate[i] && OrderedUint(key[i]) == prefix;
      const unsigned ballot = __ballot_sync(~0u, tie);
      const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
      if (lane == 0) sum_slots[block_sum.parity * kWarps + warp] = __popc(ballot);
      __syncthreads();
      int before_warp = 0, all = 0;
      for (int w = 0; w < kWarps; ++w) {
        const int c = sum_slots[block_sum.parity * kWarps + w];
        before_warp += w < warp ? c : 0;
        all += c;
      }
      block_sum.parity ^= 1;
      const long long order = ties_before + before_warp + __popc(ballot & ((1u << lane) - 1));
      if (candidate[i] && (OrderedUint(key[i]) > prefix || (tie && order < ties_wanted))) ++level[i];
      ties_before += all;
    }
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    if (channel(i) < n) levels[channel(i)] = static_cast<uint8_t>(level[i]);
  }
}

}  // namespace

const char* GradeRows(const float* x, const uint16_t* channel_scale, int rows, int cols, const float* targets,
                      int max_level, const float* thresholds, uint8_t* levels, Stream stream) {
  if (rows <= 0 || cols <= 0) return nullptr;
  if (cols > kMaxGradeCols || max_level < 1 || max_level > 8) return "GradeRows: unsupported shape or max_level";
  const GradeParams p{x, channel_scale, cols, targets, max_level, thresholds, levels};
  const int items = (cols + kThreads - 1) / kThreads;
  if (items <= 4) {
    GradeRowsKernel<4><<<rows, kThreads, 0, stream>>>(p);
  } else if (items <= 8) {
    GradeRowsKernel<8><<<rows, kThreads, 0, stream>>>(p);
  } else if (items <= 16) {
    GradeRowsKernel<16><<<rows, kThreads, 0, stream>>>(p);
  } else {
    GradeRowsKernel<32><<<rows, kThreads, 0, stream>>>(p);
  }
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace grinqh::cuda
