#include "engine/cpu_ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "engine/bit_plane_matvec.h"
#include "engine/grading.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace grinqh::cpu {
namespace {

// Rows of W widened together and reused across every input row: enough to amortize the
// widening, few enough to stay in L1/L2 with the input row.
constexpr int kRowBlock = 8;

inline float ToFloat(float v) { return v; }
inline float ToFloat(uint16_t bf16) { return std::bit_cast<float>(static_cast<uint32_t>(bf16) << 16); }

float DotBf16(const float* x, const uint16_t* w, int n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int k = 0; k < n; ++k) acc += x[k] * ToFloat(w[k]);
  return acc;
}

// out[r] = x · w[r] for r < count. Rows go four at a time: four independent FMA chains
// hide the FMA latency that bounds a lone dot product, and each x[k] is loaded once.
template <typename W>
void DotRows(const float* x, const W* const* w, int count, int n, float* out) {
  int r = 0;
  for (; r + 4 <= count; r += 4) {
    const W *w0 = w[r], *w1 = w[r + 1], *w2 = w[r + 2], *w3 = w[r + 3];
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int k = 0; k < n; ++k) {
      a0 += x[k] * ToFloat(w0[k]);
      a1 += x[k] * ToFloat(w1[k]);
      a2 += x[k] * ToFloat(w2[k]);
      a3 += x[k] * ToFloat(w3[k]);
    }
    out[r] = a0, out[r + 1] = a1, out[r + 2] = a2, out[r + 3] = a3;
  }
  for (; r < count; ++r) {
    const W* wr = w[r];  // hoisted: inside the simd loop it would become a gather
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int k = 0; k < n; ++k) acc += x[k] * ToFloat(wr[k]);
    out[r] = acc;
  }
}

// y[i][j] = x_i · w_j for four input rows and four weight rows (fp32): 16 independent
// chains, each loaded vector used four times. Row strides are in floats.
void Dot4x4(const float* x, size_t x_stride, const float* const* w, int n, float* y, size_t y_stride) {
  const float *x0 = x, *x1 = x + x_stride, *x2 = x + 2 * x_stride, *x3 = x + 3 * x_stride;
  const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
  float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
#pragma omp simd reduction(+ : a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33)
  for (int k = 0; k < n; ++k) {
    a00 += x0[k] * w0[k], a01 += x0[k] * w1[k], a02 += x0[k] * w2[k], a03 += x0[k] * w3[k];
    a10 += x1[k] * w0[k], a11 += x1[k] * w1[k], a12 += x1[k] * w2[k], a13 += x1[k] * w3[k];
    a20 += x2[k] * w0[k], a21 += x2[k] * w1[k], a22 += x2[k] * w2[k], a23 += x2[k] * w3[k];
    a30 += x3[k] * w0[k], a31 += x3[k] * w1[k], a32 += x3[k] * w2[k], a33 += x3[k] * w3[k];
  }
  float* y0 = y;
  float* y1 = y + y_stride;
  float* y2 = y + 2 * y_stride;
  float* y3 = y + 3 * y_stride;
  y0[0] = a00, y0[1] = a01, y0[2] = a02, y0[3] = a03;
  y1[0] = a10, y1[1] = a11, y1[2] = a12, y1[3] = a13;
  y2[0] = a20, y2[1] = a21, y2[2] = a22, y2[3] = a23;
  y3[0] = a30, y3[1] = a31, y3[2] = a32, y3[3] = a33;
}

#if defined(__AVX512F__)
// The GEMM path: a panel of kPanel weight rows is widened and packed k-major, so that
// for each k one 32-wide vector pair of weights meets kTileRows broadcast inputs in a
// 6 × 32 block of accumulators held in registers (the BLIS/Marlin micro-kernel shape).
constexpr int kPanel = 32;
constexpr int kTileRows = 6;
constexpr int kPanelMinRows = 8;  // below this, packing costs more than it saves

void PanelMatMul(const float* x, int rows, const Matrix& w, int n0, int n1, float* y) {
  const int k_in = w.cols, n_out = w.rows, count = n1 - n0;
  thread_local std::vector<float> panel, row;
  panel.assign(static_cast<size_t>(k_in) * kPanel, 0.f);
  row.resize(static_cast<size_t>(k_in));
  for (int j = 0; j < count; ++j) {
    WidenToFloat(w.dtype, w.row(n0 + j), row.data(), row.size());
    for (int k = 0; k < k_in; ++k) panel[static_cast<size_t>(k) * kPanel + static_cast<size_t>(j)] = row[static_cast<size_t>(k)];
  }
  const __mmask16 lo_mask = static_cast<__mmask16>(count >= 16 ? 0xFFFF : (1u << count) - 1);
  const __mmask16 hi_mask = static_cast<__mmask16>(count >= 32 ? 0xFFFF : count <= 16 ? 0 : (1u << (count - 16)) - 1);
  for (int t0 = 0; t0 < rows; t0 += kTileRows) {
    const int tile = std::min(kTileRows, rows - t0);
    __m512 acc[kTileRows][2];
    for (int i = 0; i < kTileRows; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float* xs[kTileRows];
    for (int i = 0; i < kTileRows; ++i) {
      xs[i] = x + static_cast<size_t>(t0 + std::min(i, tile - 1)) * static_cast<size_t>(k_in);
    }
    const float* p = panel.data();
    for (int k = 0; k < k_in; ++k, p += kPanel) {
      const __m512 b0 = _mm512_loadu_ps(p), b1 = _mm512_loadu_ps(p + 16);
      for (int i = 0; i < kTileRows; ++i) {
        const __m512 a = _mm512_set1_ps(xs[i][k]);
        acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
      }
    }
    for (int i = 0; i < tile; ++i) {
      float* yt = y + static_cast<size_t>(t0 + i) * static_cast<size_t>(n_out) + n0;
      _mm512_mask_storeu_ps(yt, lo_mask, acc[i][0]);
      _mm512_mask_storeu_ps(yt + 16, hi_mask, acc[i][1]);
    }
  }
}
#endif

// Rows [n0, n1) of y = x W^T, n1 - n0 <= kRowBlock.
void MatMulRows(const float* x, int rows, const Matrix& w, int n0, int n1, float* y) {
  const int n_out = w.rows;
  const int k_in = w.cols;
  const int count = n1 - n0;
  // One input row (decode) with bf16 weights: dot straight from the stored bits, so the
  // weights are read exactly once, row after row. (Interleaving four rows as DotRows does
  // measured slower here when the weights stream from DRAM.)
  if (rows == 1 && w.dtype == DType::kBF16) {
    for (int n = n0; n < n1; ++n) y[n] = DotBf16(x, reinterpret_cast<const uint16_t*>(w.row(n)), k_in);
    return;
  }
  // Otherwise widen the block's rows once and reuse them for every input row.
  thread_local std::vector<float> widened;
  widened.resize(static_cast<size_t>(kRowBlock) * static_cast<size_t>(k_in));
  const float* wrows[kRowBlock];
  for (int i = 0; i < count; ++i) {
    if (w.dtype == DType::kF32) {
      wrows[i] = reinterpret_cast<const float*>(w.row(n0 + i));
    } else {
      float* dst = widened.data() + static_cast<size_t>(i) * static_cast<size_t>(k_in);
      WidenToFloat(w.dtype, w.row(n0 + i), dst, static_cast<size_t>(k_in));
      wrows[i] = dst;
    }
  }
  const size_t x_stride = static_cast<size_t>(k_in), y_stride = static_cast<size_t>(n_out);
  int t = 0;
  if (count % 4 == 0) {  // 4 × 4 tiles of (input rows × weight rows)
    for (; t + 4 <= rows; t += 4) {
      for (int i = 0; i < count; i += 4) {
        Dot4x4(x + static_cast<size_t>(t) * x_stride, x_stride, wrows + i, k_in,
               y + static_cast<size_t>(t) * y_stride + static_cast<size_t>(n0 + i), y_stride);
      }
    }
  }
  for (; t < rows; ++t) {
    DotRows(x + static_cast<size_t>(t) * x_stride, wrows, count, k_in, y + static_cast<size_t>(t) * y_stride + n0);
  }
}

}  // namespace

float Dot(const float* a, const float* b, int n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int k = 0; k < n; ++k) acc += a[k] * b[k];
  return acc;
}

void DotStrided(const float* x, const float* rows, size_t stride, int count, int n, float* out) {
  const float* ptrs[4];
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    for (int j = 0; j < 4; ++j) ptrs[j] = rows + static_cast<size_t>(i + j) * stride;
    DotRows(x, ptrs, 4, n, out + i);
  }
  for (; i < count; ++i) out[i] = Dot(x, rows + static_cast<size_t>(i) * stride, n);
}

void MatMul(ThreadPool& pool, const float* x, int rows, const Matrix& w, float* y) {
  MatMul(pool, x, rows, {{&w, y}});
}

void MatMul(ThreadPool& pool, const float* x, int rows, std::initializer_list<MatMulOutput> outputs) {
#if defined(__AVX512F__)
  // Many input rows: a register-tiled GEMM over packed panels of weight rows.
  const int block_rows = rows >= kPanelMinRows ? kPanel : kRowBlock;
#else
  const int block_rows = kRowBlock;
#endif
  // Tasks are blocks of output rows, numbered across the matrices in turn.
  std::vector<int64_t> first_block;
  int64_t blocks = 0;
  for (const MatMulOutput& out : outputs) {
    first_block.push_back(blocks);
    blocks += (out.w->rows + block_rows - 1) / block_rows;
  }
  pool.ParallelFor(blocks, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const size_t m = static_cast<size_t>(std::upper_bound(first_block.begin(), first_block.end(), b) -
                                           first_block.begin() - 1);
      const MatMulOutput& out = outputs.begin()[m];
      const int n0 = static_cast<int>(b - first_block[m]) * block_rows;
      const int n1 = std::min(out.w->rows, n0 + block_rows);
#if defined(__AVX512F__)
      if (block_rows == kPanel) {
        PanelMatMul(x, rows, *out.w, n0, n1, out.y);
        continue;
      }
#endif
      MatMulRows(x, rows, *out.w, n0, n1, out.y);
    }
  });
}

void GradedMatMul(ThreadPool& pool, const float* x, int rows, const Matrix& w, const float* row_targets, float* y) {
  const NestedLinear& nested = *w.nested;
  const size_t k_in = static_cast<size_t>(w.cols), n_out = static_cast<size_t>(w.rows);
  const auto grade = [&](int t, std::span<uint8_t> levels) {
    if (row_targets[t] <= 0.f) {
      std::fill(levels.begin(), levels.end(), static_cast<uint8_t>(nested.max_level()));
    } else {
      const std::span<const float> xt(x + static_cast<size_t>(t) * k_in, k_in);
      if (nested.level_gains.empty()) {
        GradeRow(xt, nested.channel_scale, row_targets[t], nested.max_level(), levels);
      } else {
        GradeRowByGains(xt, nested.level_gains, row_targets[t], nested.max_level(), levels);
      }
    }
  };
  if (rows == 1) {  // decode: one row, the work splits over the weights' tiles
    thread_local std::vector<uint8_t> levels;
    levels.resize(k_in);
    grade(0, levels);
    BitPlaneMatVec(pool, nested.planes, x, levels.data(), y);
    return;
  }
  pool.ParallelFor(rows, [&](int64_t begin, int64_t end) {  // many rows: one row per task
    thread_local std::vector<uint8_t> levels;
    levels.resize(k_in);
    for (int64_t t = begin; t < end; ++t) {
      grade(static_cast<int>(t), levels);
      BitPlaneMatVec(nested.planes, x + static_cast<size_t>(t) * k_in, levels.data(), y + static_cast<size_t>(t) * n_out);
    }
  });
}

void RmsNorm(const float* x, const float* weight, float* out, int n, float eps) {
  const float mean_square = Dot(x, x, n) / static_cast<float>(n);
  const float scale = 1.f / std::sqrt(mean_square + eps);
  for (int i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * scale);
}

void ApplyRope(float* x, int num_heads, int head_dim, int position, const float* inv_freq) {
  const int half = head_dim / 2;
  float cos_v[512], sin_v[512];  // head_dim ≤ 1024 is checked when the backend is made
  for (int i = 0; i < half; ++i) {
    const float angle = static_cast<float>(position) * inv_freq[i];
    cos_v[i] = std::cos(angle);
    sin_v[i] = std::sin(angle);
  }
  for (int h = 0; h < num_heads; ++h) {
    float* v = x + static_cast<size_t>(h) * static_cast<size_t>(head_dim);
    for (int i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos_v[i] - b * sin_v[i];
      v[i + half] = b * cos_v[i] + a * sin_v[i];
    }
  }
}

void SiluMul(const float* gate, const float* up, float* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

}  // namespace grinqh::cpu
