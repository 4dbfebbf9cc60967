#include "engine/cpu_ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

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
  for (int t = 0; t < rows; ++t) {
    const float* xt = x + static_cast<size_t>(t) * static_cast<size_t>(k_in);
    DotRows(xt, wrows, count, k_in, y + static_cast<size_t>(t) * static_cast<size_t>(n_out) + n0);
  }
}

}  // namespace

float Dot(const float* a, const float* b, int n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int k = 0; k < n; ++k) acc += a[k] * b[k];
  return acc;
}

void MatMul(ThreadPool& pool, const float* x, int rows, const Matrix& w, float* y) {
  MatMul(pool, x, rows, {{&w, y}});
}

void MatMul(ThreadPool& pool, const float* x, int rows, std::initializer_list<MatMulOutput> outputs) {
  // Tasks are blocks of kRowBlock output rows, numbered across the matrices in turn.
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
      const MatMulOutput& out = outputs.begin()[m];
      const int n0 = static_cast<int>(b - first_block[m]) * kRowBlock;
      MatMulRows(x, rows, *out.w, n0, std::min(out.w->rows, n0 + kRowBlock), out.y);
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
