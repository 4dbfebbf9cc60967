// The graded matvec: y = W x with input channel k read at level b_k, from the GPU
// bit-plane layout (kernels/gpu_bit_planes.h). One kernel serves graded decode (levels per
// channel), full depth (every channel at `uniform_level`: GRINQH's 8 bits or a baseline's
// N) and small batches (kBatch rows at a time, each with its own levels).
//
// The arithmetic. Within a group (one scale s and zero z per row) a weight read at level b
// is s · (top_b(q) + c_b − z), top_b(q) = Σ_{j<b} 2^(n−1−j) · plane_j, c_b the centre of the
// interval of the dropped bits, so
//   y_r = Σ_g s_rg · ( S_rg + Σ_{k∈g, b_k>0} x_k c_{b_k} − z_rg Σ_{k∈g, b_k>0} x_k ),
//   S_rg = Σ_{k∈g} Σ_{j<b_k} x_k 2^(n−1−j) · plane_j(r, k),
// the CPU product's split (engine/backends/cpu/bit_plane_matvec.h), in the same order per
// row: channels ascending, planes from the most significant.
//
// The work split. A warp owns one 512-row tile: lane l owns its rows 16l..16l+15, i.e. two
// bytes of every 64-byte plane run, so a plane is one coalesced 64-byte load of the warp.
// A warp walks "units" (a group, or a slice of ≥ 32 channels of one when the matrix is too
// small to fill the GPU) 32 channels at a time: each lane fetches one channel's level and
// x, a ballot skips level-0 channels, and the channels left are taken four at a time, every
// needed plane of all four loaded before any is used (memory-level parallelism). A channel
// read at 1..3 planes adds, per plane, the plane's weight x_k 2^(n−1−j) to each of the
// lane's 16 sums whose bit is set (a bit test and a predicated add, the bit tests seven at
// a time by R2P: ~1.2 instructions per bit in the inner loop); a deeper channel rebuilds its 16 codes by a
// bit transpose and adds x_k · code (~0.8 instructions per bit at 8 planes). At the unit's
// end the lane applies its rows' scales and zeros ([group][row]: 32 contiguous bytes of
// scales per lane).
// A block is 8 warps on consecutive units of one tile; blockIdx.y splits the units of a
// tile into parts whose sums meet in a workspace: the last block of a tile to arrive (a
// counter) adds the parts in order and writes y, so results are deterministic.
//
// Measured (docs/BENCHMARKS.md, H200): 15–35 % of copy bandwidth on the large shapes. The
// bytes are right (DRAM reads = the needed bytes); the limit is instruction issue: Nsight
// Compute counts 3.7 thread instructions per bit read at 2 bits (gate_up) and 3.0 at 4,
// with issue slots 64 % busy and 24 warps per SM (80 registers). The per-channel work
// (level broadcast, addressing, loads, the 16-row add) outweighs the per-bit work at low
// levels; an integer tensor-core formulation is the next step. Staging the runs through
// shared memory with cp.async (16- and 8-channel double-buffered stages) was slower:
// shared memory capped residency at 12 warps per SM.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/graded_matvec.h"

namespace grinqh::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerLane = kGpuTileRows / 32;  // 16
constexpr int kChannelsAtOnce = 4;
constexpr int kMinSliceChannels = 32;

// How one matrix is cut: units (slices of groups) and parts (units per block).
struct Plan {
  int slices_per_group = 1;
  int slice_channels = 0;
  int units = 0;
  int parts = 1;
  int units_per_part = 0;
  int batch_chunks = 1;
  int batch_per_chunk = 1;
};

int SmCount() {
  static const int count = [] {
    int device = 0, sms = 132;
    if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    return sms;
  }();
  return count;
}

Plan MakePlan(const GpuPlaneShape& s, int batch) {
  Plan p;
  p.batch_per_chunk = batch <= 1 ? 1 : batch == 2 ? 2 : 4;
  p.batch_chunks = (batch + p.batch_per_chunk - 1) / p.batch_per_chunk;
  // Enough warps to keep every multiprocessor's memory pipe full (48 each), without
  // cutting a group's channels below 32 (each slice re-reads the group's scales).
  const long target_warps = 48L * SmCount();
  const int group = std::min(s.group_size, s.cols);
  while (long(s.tiles()) * s.groups() * p.slices_per_group * p.batch_chunks < target_warps &&
         (group + 2 * p.slices_per_group - 1) / (2 * p.slices_per_group) >= kMinSliceChannels) {
    p.slices_per_group *= 2;
  }
  p.slice_channels = (group + p.slices_per_group - 1) / p.slices_per_group;
  p.units = s.groups() * p.slices_per_group;
  p.parts = (p.units + kWarps - 1) / kWarps;  // one unit per warp
  p.units_per_part = (p.units + p.parts - 1) / p.parts;
  p.parts = (p.units + p.units_per_part - 1) / p.units_per_part;
  return p;
}

struct Params {
  GpuPlaneMatrix w;
  const float* x;           // [batch][cols]
  const uint8_t* levels;    // [batch][cols], or null: every channel at uniform_level
  int uniform_level;
  int batch;
  float* y;                 // [batch][rows]
  float* partials;          // [batch][parts][rows]
  unsigned* counters;       // [batch_chunks][tiles]
  Plan plan;
};

// The centre of the dropped bits' interval: (2^(n−b) − 1) / 2.
__device__ __forceinline__ float Centre(int code_bits, int level) {
  return 0.5f * static_cast<float>((1 << (code_bits - level)) - 1);
}

// sums[i] += weight for each of the 16 bits i set in `bits` (one predicated add each).
__device__ __forceinline__ void AddWhereSet(float (&sums)[kRowsPerLane], uint32_t bits, float weight) {
#pragma unroll
  for (int i = 0; i < kRowsPerLane; ++i) {
    if (bits & (1u << i)) sums[i] += weight;
  }
}

// A channel read at depth ≥ kCodePathDepth takes the code path: its 16 rows' codes are
// rebuilt from the planes by an 8×8 bit transpose (~100 instructions for 16 rows × 8
// planes), then one multiply-add per row: ~0.8 instructions per bit at depth 8, where
// adding plane by plane costs ~2 per bit (a bit test and a predicated add). Shallower
// channels take the plane-by-plane path.
constexpr int kCodePathDepth = 4;

// Transposes an 8×8 bit matrix held in 64 bits (Hacker's Delight, transpose8).
__device__ __forceinline__ uint64_t Transpose8x8(uint64_t x) {
  uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
  return x ^ t ^ (t << 28);
}

// planes[m] holds plane 2m (low half) and 2m+1 (high half) of 16 rows; codes[q] gets the
// 8-bit codes of rows 4q..4q+3, one per byte (plane j is bit 7 − j).
__device__ __forceinline__ void CodesOf(const uint32_t (&planes)[4], uint32_t (&codes)[4]) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    // Byte 7 − j of the 64-bit matrix is plane j's byte for these 8 rows.
    const uint32_t select = (2 + half) | (0 + half) << 4 | (6 + half) << 8 | (4 + half) << 12;
    const uint64_t m = (uint64_t(__byte_perm(planes[1], planes[0], select)) << 32) | __byte_perm(planes[3], planes[2], select);
    const uint64_t t = Transpose8x8(m);  // byte i: the code of row 8·half + i
    codes[2 * half] = uint32_t(t), codes[2 * half + 1] = uint32_t(t >> 32);
  }
}

// sums[i] += x · (the top `level` bits of code i), codes as bytes; a float's low mantissa
// byte takes the code (2^23 + code, exact), one subtraction makes it the code's value.
__device__ __forceinline__ void AddCodes(float (&sums)[kRowsPerLane], const uint32_t (&codes)[4], int level, float x) {
  const uint32_t keep = 0x01010101u * ((0xFF00u >> level) & 0xFFu);
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const uint32_t word = codes[q] & keep;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float code = __int_as_float(__byte_perm(word, 0x4B000000u, 0x7540u | e)) - 8388608.f;
      sums[4 * q + e] = fmaf(code, x, sums[4 * q + e]);
    }
  }
}

// The 16 rows' scales and zeros of group g for this lane (rows beyond the matrix read as 0).
__device__ __forceinline__ void LoadGroupParams(const GpuPlaneMatrix& w, int g, int row0, float (&scale)[kRowsPerLane],
                                                float (&zero)[kRowsPerLane]) {
  const int rows = w.shape.rows;
  const size_t at = size_t(g) * size_t(rows) + size_t(row0);
  if (row0 + kRowsPerLane <= rows && rows % 16 == 0) {  // 32 + 16 aligned bytes
    const uint4* s4 = reinterpret_cast<const uint4*>(w.scales + at);
    const uint4 lo = __ldg(s4), hi = __ldg(s4 + 1);
    const uint4 z = __ldg(reinterpret_cast<const uint4*>(w.zeros + at));
    const uint32_t sw[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    const uint32_t zw[4] = {z.x, z.y, z.z, z.w};
#pragma unroll
    for (int i = 0; i < kRowsPerLane; ++i) {
      scale[i] = __half2float(__ushort_as_half(static_cast<unsigned short>(sw[i / 2] >> (16 * (i % 2)))));
      zero[i] = static_cast<float>((zw[i / 4] >> (8 * (i % 4))) & 0xFFu);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kRowsPerLane; ++i) {
      const bool in = row0 + i < rows;
      scale[i] = in ? __half2float(__ushort_as_half(__ldg(w.scales + at + i))) : 0.f;
      zero[i] = in ? static_cast<float>(__ldg(w.zeros + at + i)) : 0.f;
    }
  }
}

// One block's work. kFullTile: a 512-row tile, whose plane runs are 64 bytes (a constant,
// so plane offsets are immediates); otherwise the shorter last tile.
template <int kBatch, bool kFullTile>
__device__ __forceinline__ void MatVecBlock(const Params& p) {
  const GpuPlaneShape& s = p.w.shape;
  const int tile = blockIdx.x, part = blockIdx.y, chunk = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int batch0 = chunk * p.plan.batch_per_chunk;
  const int plane_bytes = kFullTile ? kGpuPlaneBytes : s.TilePlaneBytes(tile);
  const size_t channel_stride = size_t(s.planes) * size_t(plane_bytes);
  const bool lane_reads = kFullTile || 2 * lane < plane_bytes;  // the last tile may be shorter
  const uint8_t* lane_planes = p.w.planes + s.TileOffset(tile) + 2 * lane;
  const int row0 = tile * kGpuTileRows + kRowsPerLane * lane;
  const float top_weight = static_cast<float>(1 << (s.code_bits - 1));
  const float code_weight = 1.f / static_cast<float>(1 << (8 - s.code_bits));  // codes are rebuilt 8 bits wide

  float out[kBatch][kRowsPerLane] = {};
  const int unit_end = min(p.plan.units, (part + 1) * p.plan.units_per_part);
  for (int unit = part * p.plan.units_per_part + warp; unit < unit_end; unit += kWarps) {
    const int g = unit / p.plan.slices_per_group;
    const int k_begin = g * s.group_size + (unit % p.plan.slices_per_group) * p.plan.slice_channels;
    const int k_end = min(min(k_begin + p.plan.slice_channels, (g + 1) * s.group_size), s.cols);
    if (k_begin >= k_end) continue;
    float sums[kBatch][kRowsPerLane] = {};
    float centre_sum[kBatch] = {}, x_sum[kBatch] = {};
    bool any_read = false;
    for (int k0 = k_begin; k0 < k_end; k0 += 32) {
      // Lane c holds channel k0 + c's levels and inputs, for the batch rows of this chunk.
      const int k = k0 + lane;
      int level[kBatch], deepest = 0;
      float xk[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const bool in = k < k_end && batch0 + b < p.batch;
        const size_t at = size_t(batch0 + b) * size_t(s.cols) + size_t(k);
        level[b] = !in ? 0 : p.levels ? p.levels[at] : p.uniform_level;
        xk[b] = in ? p.x[at] : 0.f;
        if (level[b] > 0) centre_sum[b] += xk[b] * Centre(s.code_bits, level[b]), x_sum[b] += xk[b];
        deepest = max(deepest, level[b]);
      }
      unsigned pending = __ballot_sync(~0u, deepest > 0);
      any_read = any_read || pending != 0;
      while (pending) {
        // Up to four channels: load every plane any of them needs, then add.
        int lane_of[kChannelsAtOnce], depth[kChannelsAtOnce], max_depth = 0;
        const unsigned short* run[kChannelsAtOnce];
#pragma unroll
        for (int c = 0; c < kChannelsAtOnce; ++c) {
          lane_of[c] = pending ? __ffs(pending) - 1 : 0;
          depth[c] = pending ? __shfl_sync(~0u, deepest, lane_of[c]) : 0;
          max_depth = max(max_depth, depth[c]);
          pending &= pending - 1;
          run[c] = reinterpret_cast<const unsigned short*>(lane_planes + size_t(k0 + lane_of[c]) * channel_stride);
        }
        // Plane by plane, as deep as the deepest of the four (a warp-uniform exit).
        uint32_t plane[kChannelsAtOnce][8] = {};
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          if (j >= max_depth) break;
#pragma unroll
          for (int c = 0; c < kChannelsAtOnce; ++c) {
            if (j < depth[c] && lane_reads) plane[c][j] = __ldg(run[c] + j * (plane_bytes / 2));
          }
        }
        uint32_t bits[kChannelsAtOnce][4];  // planes 2i and 2i+1 in the low and high halves
#pragma unroll
        for (int c = 0; c < kChannelsAtOnce; ++c) {
#pragma unroll
          for (int j = 0; j < 4; ++j) bits[c][j] = __byte_perm(plane[c][2 * j], plane[c][2 * j + 1], 0x5410);
        }
#pragma unroll
        for (int c = 0; c < kChannelsAtOnce; ++c) {
          if (depth[c] >= kCodePathDepth) {
            // Deep channels: rebuild the 16 codes (top `depth` bits) and add x_k · code.
            uint32_t codes[4];
            CodesOf(bits[c], codes);
#pragma unroll
            for (int b = 0; b < kBatch; ++b) {
              const int lv = __shfl_sync(~0u, level[b], lane_of[c]);
              const float xb = __shfl_sync(~0u, xk[b], lane_of[c]) * code_weight;
              if (lv > 0) AddCodes(sums[b], codes, lv, xb);
            }
            continue;
          }
#pragma unroll
          for (int b = 0; b < kBatch; ++b) {
            const int lv = __shfl_sync(~0u, level[b], lane_of[c]);
            float weight = __shfl_sync(~0u, xk[b], lane_of[c]) * top_weight;
            if (depth[c] == 0) continue;
#pragma unroll
            for (int j = 0; j < kCodePathDepth - 1; ++j, weight *= 0.5f) {
              if (j >= lv) break;
              AddWhereSet(sums[b], bits[c][j / 2] >> (16 * (j % 2)), weight);
            }
          }
        }
      }
    }
    if (!__any_sync(~0u, any_read)) continue;  // a unit of skipped channels reads no scales
    float scale[kRowsPerLane], zero[kRowsPerLane];
    LoadGroupParams(p.w, g, row0, scale, zero);
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) {
        centre_sum[b] += __shfl_xor_sync(~0u, centre_sum[b], offset);
        x_sum[b] += __shfl_xor_sync(~0u, x_sum[b], offset);
      }
#pragma unroll
      for (int i = 0; i < kRowsPerLane; ++i) out[b][i] += scale[i] * (sums[b][i] + centre_sum[b] - zero[i] * x_sum[b]);
    }
  }

  // The block's sum over its warps, row by row; then the parts of the tile meet.
  __shared__ float block_rows[kWarps][kGpuTileRows];
  __shared__ bool last_block;
  const int rows_here = s.TileRows(tile);
  for (int b = 0; b < kBatch; ++b) {
#pragma unroll
    for (int i = 0; i < kRowsPerLane; ++i) block_rows[warp][kRowsPerLane * lane + i] = out[b][i];
    __syncthreads();
    for (int r = threadIdx.x; r < rows_here; r += kThreads) {
      float sum = 0.f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) sum += block_rows[w][r];
      const int row = tile * kGpuTileRows + r;
      if (batch0 + b < p.batch) {
        if (p.plan.parts == 1) {
          p.y[size_t(batch0 + b) * s.rows + row] = sum;
        } else {
          p.partials[(size_t(batch0 + b) * p.plan.parts + part) * s.rows + row] = sum;
        }
      }
    }
    __syncthreads();
  }
  if (p.plan.parts == 1) return;
  __threadfence();  // this block's partials are visible before its arrival is counted
  __syncthreads();
  unsigned* counter = p.counters + size_t(chunk) * s.tiles() + tile;
  if (threadIdx.x == 0) last_block = atomicAdd(counter, 1u) == unsigned(p.plan.parts - 1);
  __syncthreads();
  if (!last_block) return;
  __threadfence();
  for (int b = 0; b < kBatch && batch0 + b < p.batch; ++b) {
    for (int r = threadIdx.x; r < rows_here; r += kThreads) {
      const int row = tile * kGpuTileRows + r;
      const float* from = p.partials + size_t(batch0 + b) * p.plan.parts * s.rows + row;
      float sum = 0.f;
      for (int q = 0; q < p.plan.parts; ++q) sum += __ldcg(from + size_t(q) * s.rows);
      p.y[size_t(batch0 + b) * s.rows + row] = sum;
    }
  }
  if (threadIdx.x == 0) *counter = 0;  // ready for the next call
}

template <int kBatch>
__global__ void __launch_bounds__(kThreads, kBatch == 1 ? 3 : 1) GradedMatVecKernel(const Params p) {
  if (p.w.shape.TileRows(blockIdx.x) == kGpuTileRows) {
    MatVecBlock<kBatch, true>(p);
  } else {
    MatVecBlock<kBatch, false>(p);
  }
}

// The workspace: arrival counters first, at a fixed place for every batch size (they are
// left at zero between calls), then the partial sums.
size_t CounterWords(const GpuPlaneShape& shape) {
  return (size_t(kMaxGradedBatch / 4) * shape.tiles() + 3) / 4 * 4;  // 16-byte aligned
}

const char* Launch(const GpuPlaneMatrix& w, int batch, const float* x, const uint8_t* levels, int uniform_level,
                   float* y, void* workspace, Stream stream) {
  const GpuPlaneShape& s = w.shape;
  if (s.rows <= 0 || s.cols <= 0 || batch <= 0) return nullptr;
  if (batch > kMaxGradedBatch || s.planes < 1 || s.planes > 8 || s.planes > s.code_bits || s.code_bits > 8 ||
      uniform_level < 0 || uniform_level > s.planes) {
    return "GradedMatVec: unsupported shape, batch or level";
  }
  Params p{w, x, levels, uniform_level, batch, y, nullptr, nullptr, MakePlan(s, batch)};
  p.counters = static_cast<unsigned*>(workspace);
  p.partials = reinterpret_cast<float*>(p.counters + CounterWords(s));
  const dim3 grid(unsigned(s.tiles()), unsigned(p.plan.parts), unsigned(p.plan.batch_chunks));
  switch (p.plan.batch_per_chunk) {
    case 1: GradedMatVecKernel<1><<<grid, kThreads, 0, stream>>>(p); break;
    case 2: GradedMatVecKernel<2><<<grid, kThreads, 0, stream>>>(p); break;
    default: GradedMatVecKernel<4><<<grid, kThreads, 0, stream>>>(p); break;
  }
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

// Prefill's dequantization. A block takes one tile and 32 channels: it stages their planes
// in shared memory (coalesced), then lane c builds the codes of channel k0 + c for 64 rows
// and writes them as bf16, so a warp writes 32 consecutive values of each row.
constexpr int kDequantChannels = 32;

__global__ void __launch_bounds__(kThreads) DequantizeToBf16Kernel(const GpuPlaneMatrix w, __nv_bfloat16* out) {
  const GpuPlaneShape& s = w.shape;
  const int tile = blockIdx.x, k0 = blockIdx.y * kDequantChannels;
  const int channels = min(kDequantChannels, s.cols - k0);
  const int plane_bytes = s.TilePlaneBytes(tile);
  // Each channel's runs padded by 4 bytes, so the 32 lanes reading one row hit 32 banks.
  __shared__ uint8_t staged[kDequantChannels * (8 * kGpuPlaneBytes + 4)];
  const int run = s.planes * plane_bytes, staged_run = run + 4;
  const uint8_t* from = w.planes + s.ChannelOffset(tile, k0);
  for (int i = threadIdx.x; i < channels * run; i += kThreads) staged[i / run * staged_run + i % run] = from[i];
  __syncthreads();
  const int c = threadIdx.x % 32, k = k0 + c;
  if (c >= channels) return;
  const int g = k / s.group_size;
  const float centre = Centre(s.code_bits, s.planes);
  const uint8_t* planes = staged + c * staged_run;
  for (int r = threadIdx.x / 32; r < s.TileRows(tile); r += kWarps) {
    int code = 0;
    for (int j = 0; j < s.planes; ++j) code |= ((planes[j * plane_bytes + r / 8] >> (r % 8)) & 1) << (s.code_bits - 1 - j);
    const int row = tile * kGpuTileRows + r;
    const size_t at = size_t(g) * s.rows + row;
    const float value = __half2float(__ushort_as_half(w.scales[at])) *
                        (static_cast<float>(code) + centre - static_cast<float>(w.zeros[at]));
    out[size_t(row) * s.cols + k] = __float2bfloat16_rn(value);
  }
}

}  // namespace

size_t GradedMatVecWorkspaceBytes(const GpuPlaneShape& shape, int batch) {
  size_t partials = 0;  // enough for every batch size up to `batch`
  for (int b = 1; b <= batch; ++b) partials = std::max(partials, size_t(b) * MakePlan(shape, b).parts * shape.rows);
  return (CounterWords(shape) + partials) * 4;
}

const char* GradedMatVec(const GpuPlaneMatrix& w, const float* x, const uint8_t* levels, int uniform_level, float* y,
                         void* workspace, Stream stream) {
  return Launch(w, 1, x, levels, uniform_level, y, workspace, stream);
}

const char* GradedMatVecBatch(const GpuPlaneMatrix& w, int batch, const float* x, const uint8_t* levels, float* y,
                              void* workspace, Stream stream) {
  if (levels == nullptr) return "GradedMatVecBatch: levels required";
  return Launch(w, batch, x, levels, 0, y, workspace, stream);
}

const char* DequantizeToBf16(const GpuPlaneMatrix& w, uint16_t* out, Stream stream) {
  const GpuPlaneShape& s = w.shape;
  if (s.rows <= 0 || s.cols <= 0) return nullptr;
  const dim3 grid(unsigned(s.tiles()), unsigned((s.cols + kDequantChannels - 1) / kDequantChannels));
  DequantizeToBf16Kernel<<<grid, kThreads, 0, stream>>>(w, reinterpret_cast<__nv_bfloat16*>(out));
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace grinqh::cuda
