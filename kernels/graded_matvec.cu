// The graded matvec on the tensor cores: y = W x with input channel k read at level b_k,
// from the GPU bit-plane layout (kernels/gpu_bit_planes.h) and the call's read plan
// (kernels/read_plan.h: the list of channel planes to read, with coded activations).
//
// The arithmetic. Within a group (scale s and zero z per row) a weight read at level b is
// s · (top_b(q) + c_b − z), top_b(q) = Σ_{j<b} 2^(n−1−j) · plane_j, c_b the centre of the
// dropped bits' interval, so
//   y_r = Σ_g s_rg · ( S_rg + Σ_{k∈g, b_k>0} x_k c_{b_k} − z_rg Σ_{k∈g, b_k>0} x_k ),
//   S_rg = Σ_{entries e = (k, j) of g} plane_j(r, k) · x_k 2^(n−1−j).
// S is an integer matrix product: the plan codes x_k 2^(−j) as a 16-bit integer (two signed
// bytes, relative to the group's largest |x|), and each plane bit is used where it lies. A
// plane byte holds 8 rows (bit i: row 8β + i), so `byte & (1 << i)` is an unsigned 8-bit
// operand worth 2^i · bit: one AND yields four entries' operands for one row, and
// mma.m16n8k32 (u8 × s8 → s32) adds 512 plane bits times their activations per warp.
// Instruction cost, per 256 plane bits a lane handles per step: 8 loads, 8 byte permutes,
// 64 ANDs, 16 MMAs, ~10 for addressing: about 0.4 instructions per bit read, where a float
// add per bit costs 2 or more. The 2^i of row i is divided out at the end, exactly.
//
// The work split. A warp owns half a row tile (256 rows: lane group g = lane / 4 reads
// bytes 4g..4g+3 of the half's 32-byte share of every run, i.e. rows 32g..32g+31) and one
// set of the plan, or a slice of its steps. Per step of 32 entries, lane (g, t) loads the
// four-byte words of entries 4t..4t+3 and 16+4t..16+4t+3 (the MMA's k columns for t),
// transposes them into words of one row byte across four entries, and runs 16 MMAs: one
// per (row byte pair, bit i), accumulating 32 rows × 8 columns. The columns are (group of
// the set, batch row, high/low byte), so at the end lane (g, t) holds its 32 rows' integer
// sums for one (group, batch row): it applies that group's scales and zeros and the plan's
// correction sums, and the lanes of one batch row add their groups. Warps of one half tile
// that took other sets meet in the workspace: the last to arrive (a counter) adds the
// parts in set order and writes y, so results are deterministic.
//
// Measured (docs/BENCHMARKS.md, H100, copy bandwidth 3,038 GB/s): the matvec alone at 52 %
// of copy bandwidth on lm_head at 2 bits and 62 % at 8, 32–53 % on gate_up; shapes split
// into many parts (down, qkv, o) far less, which is what the reduction's eight loads in
// flight address. The previous design (a float add per plane bit) was instruction-bound at
// 3.0–3.7 instructions per bit, 15–35 % on an H200.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/graded_matvec.h"
#include "kernels/read_plan.h"

namespace grinqh::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kHalfRows = kGpuTileRows / 2;      // 256: one warp's rows
constexpr int kLaneRows = kHalfRows / 8;         // 32: one lane group's rows
constexpr int kHalfBytes = kGpuPlaneBytes / 2;   // 32: a half's share of a full run
constexpr int kMaxSlices = 8;

// How one call is cut: warps take (chunk, tile, half, set, slice) units.
struct Split {
  int slices = 1;  // parts of one set's steps
  int parts = 1;   // sets · slices: the partial sums of one half tile
  long units = 0;
};

int SmCount() {
  static const int count = [] {
    int device = 0, sms = 132;
    if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    return sms;
  }();
  return count;
}

Split MakeSplit(const GpuPlaneShape& s, const ReadPlanShape& ps) {
  Split sp;
  // Enough warps to keep every multiprocessor's memory pipe busy (~16 each); slicing a
  // set's steps costs a partial sum per slice.
  const long base = long(ps.chunks) * s.tiles() * 2 * ps.sets;
  const long want = 16L * SmCount();
  sp.slices = int(std::clamp<long>((want + base - 1) / base, 1, kMaxSlices));
  sp.parts = ps.sets * sp.slices;
  sp.units = base * sp.slices;
  return sp;
}

size_t PartialsAt(const GpuPlaneShape& s) { return CountersAt(s) + CounterBytes(s); }
__host__ __device__ int PartialStride(const GpuPlaneShape& s) { return (s.rows + 7) / 8 * 8; }  // rows as float4 pairs

struct Params {
  GpuPlaneMatrix w;
  ReadPlanShape ps;
  Split split;
  int batch;
  const uint8_t* plan;
  float* y;         // [batch][rows]
  unsigned* counters;  // [chunk][tile][half]
  float* partials;  // [chunk][part][kPlanMaxRows][PartialStride]
};

__device__ __forceinline__ void Mma(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                    uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Four entries' words (4 row bytes each) → four words of one row byte (4 entries each).
__device__ __forceinline__ void TransposeBytes(const uint32_t (&w)[4], uint32_t (&t)[4]) {
  const uint32_t lo01 = __byte_perm(w[0], w[1], 0x5140), hi01 = __byte_perm(w[0], w[1], 0x7362);
  const uint32_t lo23 = __byte_perm(w[2], w[3], 0x5140), hi23 = __byte_perm(w[2], w[3], 0x7362);
  t[0] = __byte_perm(lo01, lo23, 0x5410), t[1] = __byte_perm(lo01, lo23, 0x7632);
  t[2] = __byte_perm(hi01, hi23, 0x5410), t[3] = __byte_perm(hi01, hi23, 0x7632);
}

// One step's loads for lane (g, t): the runs of its 8 entries, their plane words, and its
// activation column words.
struct Step {
  uint32_t word[2][4];
  uint32_t coded[2];
};

// Plane words are read once per call: not kept in L1, where the plan's lines are reused.
__device__ __forceinline__ uint32_t LoadStreamed(const uint8_t* at) {
  uint32_t v;
  asm("ld.global.nc.L1::no_allocate.b32 %0, [%1];" : "=r"(v) : "l"(at));
  return v;
}

__device__ __forceinline__ uint2 LoadRuns(const uint16_t* runs, int step, int t, int k_half) {
  return __ldg(reinterpret_cast<const uint2*>(runs + step * kPlanStepEntries + 16 * k_half + 4 * t));
}

__device__ __forceinline__ void LoadStep(Step& st, const uint8_t* lane_base, int plane_bytes, bool lane_reads,
                                         const uint2 (&run)[2], const int8_t* coded, int step, int g, int t) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t r[4] = {run[h].x & 0xFFFFu, run[h].x >> 16, run[h].y & 0xFFFFu, run[h].y >> 16};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      st.word[h][e] = lane_reads ? LoadStreamed(lane_base + size_t(r[e]) * plane_bytes) : 0u;
    }
    st.coded[h] = __ldg(reinterpret_cast<const uint32_t*>(coded + (step * 8 + g) * kPlanStepEntries + 16 * h + 4 * t));
  }
}

// acc[p][i]: rows 8·(2p) + i (c0 high, c1 low) and 8·(2p+1) + i (c2, c3) of the lane's 32.
__device__ __forceinline__ void MultiplyStep(int (&acc)[2][8][4], const Step& st) {
  uint32_t a[4], b[4];
  TransposeBytes(st.word[0], a);
  TransposeBytes(st.word[1], b);
#pragma unroll
  for (int p = 0; p < 2; ++p) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t bit = 0x01010101u << i;
      Mma(acc[p][i], a[2 * p] & bit, a[2 * p + 1] & bit, b[2 * p] & bit, b[2 * p + 1] & bit, st.coded[0], st.coded[1]);
    }
  }
}

// The lane's 32 rows' scales and zeros of one group (rows past the matrix read as 0):
// 64 + 32 contiguous bytes ([group][row]), as 16-byte loads when rows allow.
__device__ __forceinline__ void LoadGroupParams(const GpuPlaneMatrix& w, int group, int row0, float (&scale)[kLaneRows],
                                                float (&zero)[kLaneRows]) {
  const int rows = w.shape.rows;
  const size_t at = w.shape.ParamIndex(group, row0);
  if (rows % 16 == 0 && row0 + kLaneRows <= rows) {
    const uint4* s4 = reinterpret_cast<const uint4*>(w.scales + at);
    const uint4* z4 = reinterpret_cast<const uint4*>(w.zeros + at);
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const uint4 sv = __ldg(s4 + v);
      const uint32_t words[4] = {sv.x, sv.y, sv.z, sv.w};
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        scale[8 * v + i] = __half2float(__ushort_as_half(static_cast<unsigned short>(words[i / 2] >> (16 * (i % 2)))));
      }
    }
#pragma unroll
    for (int v = 0; v < 2; ++v) {
      const uint4 zv = __ldg(z4 + v);
      const uint32_t words[4] = {zv.x, zv.y, zv.z, zv.w};
#pragma unroll
      for (int i = 0; i < 16; ++i) zero[16 * v + i] = static_cast<float>((words[i / 4] >> (8 * (i % 4))) & 0xFFu);
    }
    return;
  }
#pragma unroll
  for (int r = 0; r < kLaneRows; ++r) {
    const bool in = row0 + r < rows;
    scale[r] = in ? __half2float(__ushort_as_half(__ldg(w.scales + at + r))) : 0.f;
    zero[r] = in ? static_cast<float>(__ldg(w.zeros + at + r)) : 0.f;
  }
}

// The lane's 32 rows of one (group, batch row): scales and zeros applied, 2^i divided out.
__device__ __forceinline__ void Fold(const int (&acc)[2][8][4], const GpuPlaneMatrix& w, int group, int row0,
                                     float4 f, float (&out)[kLaneRows]) {
  float scale[kLaneRows], zero[kLaneRows];
  LoadGroupParams(w, group, row0, scale, zero);
#pragma unroll
  for (int beta = 0; beta < 4; ++beta) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int rho = 8 * beta + i;
      const int* c = acc[beta / 2][i] + 2 * (beta % 2);
      const float sum = fmaf(static_cast<float>(c[0]), 256.f, static_cast<float>(c[1]));
      out[rho] = scale[rho] * fmaf(sum, f.x * __int_as_float((127 - i) << 23), fmaf(-zero[rho], f.z, f.y));
    }
  }
}

__global__ void __launch_bounds__(kThreads) GradedMatVecKernel(const Params p) {
  const GpuPlaneShape& s = p.w.shape;
  const ReadPlanShape& ps = p.ps;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  long unit = long(blockIdx.x) * kWarps + warp;
  if (unit >= p.split.units) return;
  const int part = int(unit % p.split.parts);
  unit /= p.split.parts;
  const int half = int(unit % 2);
  unit /= 2;
  const int tile = int(unit % s.tiles()), chunk = int(unit / s.tiles());
  const int set = part / p.split.slices, slice = part % p.split.slices;
  const int plane_bytes = s.TilePlaneBytes(tile);
  if (kHalfBytes * half >= plane_bytes) return;  // a short last tile has no second half
  const int lane_byte = kHalfBytes * half + 4 * g;
  const bool lane_reads = lane_byte < plane_bytes;
  const int plan = chunk * ps.sets + set;
  const uint16_t* runs = reinterpret_cast<const uint16_t*>(p.plan + ps.runs_at) + size_t(plan) * ps.capacity;
  const int8_t* coded = reinterpret_cast<const int8_t*>(p.plan + ps.coded_at) + size_t(plan) * ps.capacity * 8;
  const int steps = __ldg(reinterpret_cast<const int*>(p.plan + ps.counts_at) + plan) / kPlanStepEntries;
  const int step_begin = steps * slice / p.split.slices, step_end = steps * (slice + 1) / p.split.slices;
  const uint8_t* lane_base =
      p.w.planes + s.TileOffset(tile) + size_t(set) * ps.set_channels * s.planes * plane_bytes + lane_byte;

  // The steps, loads one step ahead of the multiplies and run indices two ahead.
  int acc[2][8][4] = {};
  if (step_begin < step_end) {
    uint2 run[2] = {LoadRuns(runs, step_begin, t, 0), LoadRuns(runs, step_begin, t, 1)};
    Step cur;
    LoadStep(cur, lane_base, plane_bytes, lane_reads, run, coded, step_begin, g, t);
    if (step_begin + 1 < step_end) run[0] = LoadRuns(runs, step_begin + 1, t, 0), run[1] = LoadRuns(runs, step_begin + 1, t, 1);
    for (int step = step_begin; step < step_end; ++step) {
      Step next = cur;
      if (step + 1 < step_end) {
        LoadStep(next, lane_base, plane_bytes, lane_reads, run, coded, step + 1, g, t);
        if (step + 2 < step_end) run[0] = LoadRuns(runs, step + 2, t, 0), run[1] = LoadRuns(runs, step + 2, t, 1);
      }
      MultiplyStep(acc, cur);
      cur = next;
    }
  }

  // Lane (g, t) holds column pair t = (group q, batch row b) for its 32 rows.
  const int rows_per_chunk = ps.rows_per_chunk;
  const int q = t / rows_per_chunk, b = t % rows_per_chunk;
  const int group = set * ps.groups_per_set + q;
  const int row0 = tile * kGpuTileRows + half * kHalfRows + g * kLaneRows;
  float out[kLaneRows] = {};
  float4 f = t < ps.groups_per_set * rows_per_chunk && group < s.groups()
                 ? __ldg(reinterpret_cast<const float4*>(p.plan + ps.fold_at) + size_t(plan) * 4 + t)
                 : make_float4(0.f, 0.f, 0.f, 0.f);
  if (slice != 0) f.y = f.z = 0.f;  // the correction terms once per set
  if (f.x != 0.f) Fold(acc, p.w, group, row0, f, out);
  // The groups of one batch row meet: lanes t, t ^ 1 and t ^ 2 hold batch row 0 when a
  // chunk has one row; t and t ^ 2 share a row when it has two.
  if (rows_per_chunk <= 2) {
#pragma unroll
    for (int o = rows_per_chunk; o < 4; o *= 2) {
#pragma unroll
      for (int r = 0; r < kLaneRows; ++r) out[r] += __shfl_xor_sync(~0u, out[r], o);
    }
  }
  const bool writer = q == 0 && t < rows_per_chunk;
  const int batch_row = chunk * kPlanMaxRows + b;
  if (p.split.parts == 1) {
    if (writer && batch_row < p.batch) {
#pragma unroll
      for (int r = 0; r < kLaneRows; ++r) {
        if (row0 + r < s.rows) p.y[size_t(batch_row) * s.rows + row0 + r] = out[r];
      }
    }
    return;
  }
  const int stride = PartialStride(s);
  if (writer) {
    float4* to = reinterpret_cast<float4*>(p.partials + (size_t(chunk * p.split.parts + part) * kPlanMaxRows + b) * stride + row0);
#pragma unroll
    for (int r = 0; r < kLaneRows / 4; ++r) {
      if (row0 + 4 * r < stride) __stcg(to + r, make_float4(out[4 * r], out[4 * r + 1], out[4 * r + 2], out[4 * r + 3]));
    }
  }
  // The last warp of this half tile to arrive adds the parts in order.
  __threadfence();
  __syncwarp();
  unsigned* counter = p.counters + (size_t(chunk) * s.tiles() + tile) * 2 + half;
  unsigned arrived = 0;
  if (lane == 0) arrived = atomicAdd(counter, 1u);
  arrived = __shfl_sync(~0u, arrived, 0);
  if (arrived != unsigned(p.split.parts - 1)) return;
  __threadfence();
  // Lane l adds rows 8l..8l+7 of the half as two float4s per part, eight parts' loads in
  // flight at a time (the adds stay in part order).
  const int half_row0 = tile * kGpuTileRows + half * kHalfRows;
  const size_t part_stride = size_t(kPlanMaxRows) * stride;
  for (int bb = 0; bb < rows_per_chunk && chunk * kPlanMaxRows + bb < p.batch; ++bb) {
    const int row = half_row0 + 8 * lane;
    if (row >= s.rows) continue;
    const float4* from = reinterpret_cast<const float4*>(p.partials + size_t(chunk) * p.split.parts * part_stride +
                                                         size_t(bb) * stride + row);
    float sum[8] = {};
#pragma unroll 8
    for (int k = 0; k < p.split.parts; ++k) {
      const float4 a = __ldcg(from + k * part_stride / 4), b = __ldcg(from + k * part_stride / 4 + 1);
      sum[0] += a.x, sum[1] += a.y, sum[2] += a.z, sum[3] += a.w, sum[4] += b.x, sum[5] += b.y, sum[6] += b.z, sum[7] += b.w;
    }
    float* to = p.y + size_t(chunk * kPlanMaxRows + bb) * s.rows + row;
#pragma unroll
    for (int r = 0; r < 8; ++r) {
      if (row + r < s.rows) to[r] = sum[r];
    }
  }
  if (lane == 0) *counter = 0;  // ready for the next call
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
  const float centre = DroppedBitsCentre(s.code_bits, s.planes);
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


bool Supported(const GpuPlaneShape& s, int batch) {
  return batch >= 1 && batch <= kMaxGradedBatch && s.planes >= 1 && s.planes <= 8 && s.planes <= s.code_bits &&
         s.code_bits <= 8 && MakeReadPlanShape(s, batch).set_channels <= kMaxSetChannels;
}

const char* LastError() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

size_t GradedMatVecWorkspaceBytes(const GpuPlaneShape& shape, int batch) {
  size_t partials = 0;  // enough for every batch size up to `batch`
  for (int b = 1; b <= batch; ++b) {
    const ReadPlanShape ps = MakeReadPlanShape(shape, b);
    const Split sp = MakeSplit(shape, ps);
    if (sp.parts > 1) partials = std::max(partials, size_t(ps.chunks) * sp.parts * kPlanMaxRows * PartialStride(shape) * 4);
  }
  return PartialsAt(shape) + partials;
}

const char* GradedMatVecFromPlan(const GpuPlaneMatrix& w, int batch, float* y, void* workspace, Stream stream) {
  const GpuPlaneShape& s = w.shape;
  if (s.rows <= 0 || s.cols <= 0 || batch <= 0) return nullptr;
  if (!Supported(s, batch)) return "GradedMatVec: unsupported shape or batch";
  Params p{w, MakeReadPlanShape(s, batch), {}, batch, static_cast<const uint8_t*>(workspace), y, nullptr, nullptr};
  p.split = MakeSplit(s, p.ps);
  uint8_t* base = static_cast<uint8_t*>(workspace);
  p.counters = reinterpret_cast<unsigned*>(base + CountersAt(s));
  p.partials = reinterpret_cast<float*>(base + PartialsAt(s));
  const unsigned blocks = unsigned((p.split.units + kWarps - 1) / kWarps);
  GradedMatVecKernel<<<blocks, kThreads, 0, stream>>>(p);
  return LastError();
}

const char* GradedMatVec(const GpuPlaneMatrix& w, const float* x, const uint8_t* levels, int uniform_level, float* y,
                         void* workspace, Stream stream) {
  if (const char* err = PlanGradedReads(w.shape, 1, x, levels, uniform_level, workspace, stream)) return err;
  return GradedMatVecFromPlan(w, 1, y, workspace, stream);
}

const char* GradedMatVecBatch(const GpuPlaneMatrix& w, int batch, const float* x, const uint8_t* levels, float* y,
                              void* workspace, Stream stream) {
  if (levels == nullptr) return "GradedMatVecBatch: levels required";
  if (const char* err = PlanGradedReads(w.shape, batch, x, levels, 0, workspace, stream)) return err;
  return GradedMatVecFromPlan(w, batch, y, workspace, stream);
}

const char* DequantizeToBf16(const GpuPlaneMatrix& w, uint16_t* out, Stream stream) {
  const GpuPlaneShape& s = w.shape;
  if (s.rows <= 0 || s.cols <= 0) return nullptr;
  const dim3 grid(unsigned(s.tiles()), unsigned((s.cols + kDequantChannels - 1) / kDequantChannels));
  DequantizeToBf16Kernel<<<grid, kThreads, 0, stream>>>(w, reinterpret_cast<__nv_bfloat16*>(out));
  return LastError();
}

}  // namespace grinqh::cuda
