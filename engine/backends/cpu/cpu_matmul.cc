// The dense matrix products of the CPU backend (cpu::MatMul), in one summation order.
//
// Every output y[t][n] = x_t · w_n is summed the same way whatever else is in the batch:
// kMatMulLanes lanes (cpu_ops.h), lane j accumulating the terms k ≡ j (mod lanes) in
// increasing k (a zero-filled last vector when the lanes do not divide the width), then the
// lanes added pairwise (j + lanes/2, then + lanes/4, ... + 1). Kernels differ only in how
// many (input row, weight row) pairs they carry at once, never in a pair's arithmetic, so a
// sequence's logits do not depend on the rows batched beside it, nor on how its prompt
// was chunked: the scheduler's batches give each request what it gets alone.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/backends/cpu/cpu_ops.h"

#if GRINQH_MATMUL_AVX512
#include <immintrin.h>
#endif

namespace grinqh::cpu {
namespace {

constexpr int kLanes = kMatMulLanes;
constexpr int kTile = 16;       // accumulators a kernel carries: one per (input row, weight row) pair
constexpr int kRowBlock = 16;   // weight rows per task, widened together and reused by every input row
constexpr int kTileRows = 4;    // a tile of input rows × weight rows
constexpr int kTileCols = 4;
// Decode rows read bf16 weights straight from the stored bits when there are fewer than
// this many; the portable build widens them first (its bf16 shuffles cost more than that).
constexpr int kDirectRows = GRINQH_MATMUL_AVX512 ? 8 : 0;
// Weight rows a one-row product carries at once: AVX-512 streams them one after another
// (the core overlaps their chains); short portable vectors need four chains to hide latency.
constexpr int kDotChains = GRINQH_MATMUL_AVX512 ? 1 : 4;

#if GRINQH_MATMUL_AVX512
using Vec = __m512;
// The maskz_ forms with every lane set: GCC 12's unmasked ones trip -Wuninitialized.
constexpr __mmask16 kAll = 0xFFFF;
inline Vec Zero() { return _mm512_setzero_ps(); }
inline __mmask16 Mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }
inline Vec Load(const float* p, int n) { return n == kLanes ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(Mask(n), p); }
inline Vec Load(const uint16_t* p, int n) {  // bf16: the high half of an fp32
  const __m256i bits = n == kLanes ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                   : _mm256_maskz_loadu_epi16(Mask(n), p);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll, _mm512_maskz_cvtepu16_epi32(kAll, bits), 16));
}
inline Vec Fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
// Keeps a loaded vector in a register: left alone, GCC folds the load into each of the
// FMAs that use it, reading it from memory four times.
inline Vec InRegister(Vec v) {
  asm("" : "+v"(v));
  return v;
}

// The pairwise steps on two vectors at once: a step folds each vector's lanes in half and
// packs both halves' results side by side, so four steps take 16 vectors to 16 sums.
inline Vec Fold8(Vec a, Vec b) {  // lanes i < 8: a[i] + a[i + 8]; then b's
  return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, a, b, 0x44), _mm512_maskz_shuffle_f32x4(kAll, a, b, 0xEE));
}
inline Vec Fold4(Vec a, Vec b) {  // per 4-lane quarter: one vector's s[i] + s[i + 4]
  return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, a, b, 0x88), _mm512_maskz_shuffle_f32x4(kAll, a, b, 0xDD));
}
inline Vec Fold2(Vec a, Vec b) { return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x44), _mm512_shuffle_ps(a, b, 0xEE)); }
inline Vec Fold1(Vec a, Vec b) { return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xDD)); }

// out[i] = the lanes of v[i] summed in the fixed order, i < 16.
[[gnu::always_inline]] inline void ReduceLanes(const Vec* v, float* out) {
  Vec a[8], b[4], c[2];
  for (int i = 0; i < 8; ++i) a[i] = Fold8(v[2 * i], v[2 * i + 1]);
  for (int i = 0; i < 4; ++i) b[i] = Fold4(a[2 * i], a[2 * i + 1]);
  for (int i = 0; i < 2; ++i) c[i] = Fold2(b[2 * i], b[2 * i + 1]);
  // Lane 4q + j now holds the sum of v[q + 4j]: transpose back.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_ps(out, _mm512_maskz_permutexvar_ps(kAll, order, Fold1(c[0], c[1])));
}
#else
// Portable: the compiler's vectors (SSE, NEON). Products are rounded before the add, as
// kMatMulFused says; no contraction, since the build is ISO C++ (-std=c++20, not gnu++).
using Vec = float __attribute__((vector_size(sizeof(float) * kLanes)));
inline Vec Zero() { return Vec{}; }
inline Vec Load(const float* p, int n) {
  Vec v{};
  std::memcpy(&v, p, sizeof(float) * static_cast<size_t>(n));
  return v;
}
inline Vec Load(const uint16_t* p, int n) {  // bf16: the high half of an fp32
  using Half = uint16_t __attribute__((vector_size(sizeof(uint16_t) * kLanes)));
  using Bits = uint32_t __attribute__((vector_size(sizeof(uint32_t) * kLanes)));
  Half h{};
  std::memcpy(&h, p, sizeof(uint16_t) * static_cast<size_t>(n));
  return reinterpret_cast<Vec>(__builtin_convertvector(h, Bits) << 16);
}
inline Vec Fma(Vec a, Vec b, Vec c) { return c + a * b; }
inline Vec InRegister(Vec v) { return v; }
inline void ReduceLanes(const Vec* v, float* out) {
  for (int i = 0; i < kTile; ++i) {
    Vec s = v[i];
    for (int width = kLanes / 2; width >= 1; width /= 2) {
      for (int j = 0; j < width; ++j) s[j] += s[j + width];
    }
    out[i] = s[0];
  }
}
#endif

// acc[r * C + c] += x_r[k..k+n) · w_c[k..k+n), lane by lane.
template <int R, int C, typename W>
[[gnu::always_inline]] inline void Accumulate(const float* x, size_t x_stride, const W* const* w, int k, int n, Vec* acc) {
  Vec xv[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) xv[r] = InRegister(Load(x + static_cast<size_t>(r) * x_stride + k, n));
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    const Vec wv = InRegister(Load(w[c] + k, n));
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r * C + c] = Fma(xv[r], wv, acc[r * C + c]);
  }
}

// y[r][c] = x_r · w_c for R input rows (x_stride apart) and C weight rows, c < cols of them
// stored (the rest of C repeat a row and are not written): one accumulator per pair.
template <int R, int C, typename W>
void Tile(const float* x, size_t x_stride, const W* const* w, int cols, int k_in, float* y, size_t y_stride) {
  static_assert(R * C == kTile);
  Vec acc[kTile];
#pragma GCC unroll 16
  for (Vec& a : acc) a = Zero();
  int k = 0;
  for (; k + kLanes <= k_in; k += kLanes) Accumulate<R, C>(x, x_stride, w, k, kLanes, acc);
  if (k < k_in) Accumulate<R, C>(x, x_stride, w, k, k_in - k, acc);  // zero-filled lanes past the end
  float sums[kTile];
  ReduceLanes(acc, sums);
  for (int r = 0; r < R; ++r) std::copy(sums + r * C, sums + r * C + cols, y + static_cast<size_t>(r) * y_stride);
}

// The same for one input row (a decode): kDotChains weight rows at a time, each a chain of
// multiply-adds over k, so the weights stream in order.
template <typename W>
void DotRow(const float* x, const W* const* w, int cols, int k_in, float* y) {
  Vec acc[kTile];
  const int full = k_in / kLanes * kLanes;
  for (int c = 0; c < kTile; c += kDotChains) {
    Vec a[kDotChains];
#pragma GCC unroll 4
    for (Vec& v : a) v = Zero();
    for (int k = 0; k < full; k += kLanes) {
      const Vec xv = Load(x + k, kLanes);
#pragma GCC unroll 4
      for (int i = 0; i < kDotChains; ++i) a[i] = Fma(xv, Load(w[c + i] + k, kLanes), a[i]);
    }
    if (full < k_in) {
      const Vec xv = Load(x + full, k_in - full);
#pragma GCC unroll 4
      for (int i = 0; i < kDotChains; ++i) a[i] = Fma(xv, Load(w[c + i] + full, k_in - full), a[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < kDotChains; ++i) acc[c + i] = a[i];
  }
  float sums[kTile];
  ReduceLanes(acc, sums);
  std::copy(sums, sums + cols, y);
}

// Weight rows [n0, n1) of y = x W^T, n1 - n0 <= kRowBlock.
void MatMulBlock(const float* x, int rows, const Matrix& w, int n0, int n1, float* y) {
  const int k_in = w.cols, count = n1 - n0;
  const size_t x_stride = static_cast<size_t>(k_in), y_stride = static_cast<size_t>(w.rows);
  // A short block repeats its last row in the unused slots (computed, never stored).
  const auto row_index = [&](int i) { return n0 + std::min(i, count - 1); };

  if (rows < kDirectRows && w.dtype == DType::kBF16) {
    const uint16_t* wrows[kRowBlock];
    for (int i = 0; i < kRowBlock; ++i) wrows[i] = reinterpret_cast<const uint16_t*>(w.row(row_index(i)));
    for (int t = 0; t < rows; ++t) {
      DotRow(x + t * x_stride, wrows, count, k_in, y + t * y_stride + n0);
    }
    return;
  }
  // Otherwise widen the block once and reuse it for every input row.
  thread_local std::vector<float> widened;
  widened.resize(static_cast<size_t>(kRowBlock) * x_stride);
  const float* wrows[kRowBlock];
  for (int i = 0; i < kRowBlock; ++i) {
    if (w.dtype == DType::kF32) {
      wrows[i] = reinterpret_cast<const float*>(w.row(row_index(i)));
    } else {
      float* dst = widened.data() + static_cast<size_t>(i) * x_stride;
      if (i < count) WidenToFloat(w.dtype, w.row(n0 + i), dst, x_stride);
      wrows[i] = i < count ? dst : wrows[count - 1];
    }
  }
  int t = 0;
  for (; t + kTileRows <= rows; t += kTileRows) {
    for (int c = 0; c < count; c += kTileCols) {
      Tile<kTileRows, kTileCols>(x + t * x_stride, x_stride, wrows + c, std::min(kTileCols, count - c), k_in,
                                 y + t * y_stride + n0 + c, y_stride);
    }
  }
  for (; t < rows; ++t) DotRow(x + t * x_stride, wrows, count, k_in, y + t * y_stride + n0);
}

}  // namespace

void MatMul(ThreadPool& pool, const float* x, int rows, const Matrix& w, float* y) {
  MatMul(pool, x, rows, {{&w, y}});
}

void MatMul(ThreadPool& pool, const float* x, int rows, std::span<const MatMulOutput> outputs) {
  // Tasks are blocks of output rows, numbered across the matrices in turn.
  std::vector<int64_t> first_block;
  int64_t blocks = 0;
  for (const MatMulOutput& out : outputs) {
    first_block.push_back(blocks);
    blocks += (out.w->rows + kRowBlock - 1) / kRowBlock;
  }
  pool.ParallelFor(blocks, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const size_t m = static_cast<size_t>(std::upper_bound(first_block.begin(), first_block.end(), b) -
                                           first_block.begin() - 1);
      const MatMulOutput& out = outputs[m];
      const int n0 = static_cast<int>(b - first_block[m]) * kRowBlock;
      MatMulBlock(x, rows, *out.w, n0, std::min(out.w->rows, n0 + kRowBlock), out.y);
    }
  });
}

}  // namespace grinqh::cpu
