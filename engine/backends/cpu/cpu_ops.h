// The numeric building blocks of the CPU forward pass, fp32 arithmetic throughout.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>

#include <functional>

#include "engine/backends/backend.h"
#include "engine/base/thread_pool.h"
#include "engine/model/weights.h"

namespace grinqh::cpu {

// y[t, :] = W x[t, :] for t < rows: x is [rows × W.cols], y is [rows × W.rows].
// Weights are widened from their stored dtype on the fly; work splits over W's rows.
// Each output sums in one fixed order, so a row's result does not depend on the other rows
// of x: batching and chunking leave every sequence's bits alone. The order: kMatMulLanes
// lanes, lane j accumulating x[k]·w[k] for k ≡ j (mod lanes) in increasing k (fused
// multiply-adds when kMatMulFused), then the lanes added pairwise (j + lanes/2, ..., + 1).
void MatMul(ThreadPool& pool, const float* x, int rows, const Matrix& w, float* y);
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define GRINQH_MATMUL_AVX512 1
inline constexpr int kMatMulLanes = 16;
inline constexpr bool kMatMulFused = true;
#else
#define GRINQH_MATMUL_AVX512 0
inline constexpr int kMatMulLanes = 4;  // the compiler's portable vectors
inline constexpr bool kMatMulFused = false;
#endif

// Several products of the same input (q/k/v, gate/up) in one parallel loop, so a decode
// step pays one dispatch instead of three.
struct MatMulOutput {
  const Matrix* w;
  float* y;
};
void MatMul(ThreadPool& pool, const float* x, int rows, std::span<const MatMulOutput> outputs);
inline void MatMul(ThreadPool& pool, const float* x, int rows, std::initializer_list<MatMulOutput> outputs) {
  MatMul(pool, x, rows, std::span<const MatMulOutput>(outputs.begin(), outputs.size()));
}

// Grades one input row: levels[k] (0..w.max_level()) for x against a layer in planes at
// `target` bits per weight.
using RowGrader =
    std::function<void(const PlaneWeights& w, std::span<const float> x, float target, std::span<uint8_t> levels)>;

// y = W x with each row's input channels read at graded levels: row t's channels are graded
// at row_targets[t] (> 0) by `grade` (GradeRow on w.channel_scale when empty), and each
// row's product reads only the bit planes its levels need. When `row_stats` is given,
// row_stats[t] adds what row t read (ForwardStats).
void GradedMatMul(ThreadPool& pool, const float* x, int rows, const PlaneWeights& w, const float* row_targets,
                  float* y, const RowGrader& grade, ForwardStats* row_stats);

// out = x / rms(x) * weight, over n elements (HF's RMSNorm in fp32). out may alias x.
void RmsNorm(const float* x, const float* weight, float* out, int n, float eps);

// Rotates each head of x ([num_heads × head_dim], HF's rotate-half convention) by the
// angles position × inv_freq[i], i < head_dim / 2.
void ApplyRope(float* x, int num_heads, int head_dim, int position, const float* inv_freq);

// x[i] = silu(gate[i]) * up[i]
void SiluMul(const float* gate, const float* up, float* out, int n);

float Dot(const float* a, const float* b, int n);

// out[i] = x · (rows + i · stride)[0..n) for i < count: dot products with rows of a
// strided matrix (attention scores against cached keys), four chains at a time.
void DotStrided(const float* x, const float* rows, size_t stride, int count, int n, float* out);

}  // namespace grinqh::cpu
