#include "engine/backends/cpu/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backends/cpu/bit_plane_matvec.h"
#include "engine/quant/grading.h"

namespace grinqh::cpu {
namespace {

// out[r] = x · w[r] for r < 4: four independent FMA chains hide the FMA latency that
// bounds a lone dot product, and each x[k] is loaded once.
void Dot4(const float* x, const float* const* w, int n, float* out) {
  const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
  for (int k = 0; k < n; ++k) {
    a0 += x[k] * w0[k];
    a1 += x[k] * w1[k];
    a2 += x[k] * w2[k];
    a3 += x[k] * w3[k];
  }
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
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
    Dot4(x, ptrs, n, out + i);
  }
  for (; i < count; ++i) out[i] = Dot(x, rows + static_cast<size_t>(i) * stride, n);
}

void GradedMatMul(ThreadPool& pool, const float* x, int rows, const PlaneWeights& w, const float* row_targets,
                  float* y, const RowGrader& grade, ForwardStats* row_stats) {
  const BitPlaneShape& shape = w.planes.shape;
  const size_t k_in = static_cast<size_t>(shape.cols), n_out = static_cast<size_t>(shape.rows);
  const auto grade_row = [&](int t, std::span<uint8_t> levels) {
    const std::span<const float> xt(x + static_cast<size_t>(t) * k_in, k_in);
    if (grade) {
      grade(w, xt, row_targets[t], levels);
    } else {
      GradeRow(xt, w.channel_scale, row_targets[t], w.max_level(), levels);
    }
    if (row_stats == nullptr) return;
    const ReadBytes read = CountReadBytes(shape, levels.data());
    ForwardStats& s = row_stats[t];
    s.weight_bytes += read.planes + read.params;
    s.plane_bytes += read.planes;
    s.weights += uint64_t(n_out) * k_in;
    s.graded_channels += k_in;
    s.graded_products += 1;
  };
  if (rows == 1) {  // decode: one row, the work splits over the weights' tiles
    thread_local std::vector<uint8_t> levels;
    levels.resize(k_in);
    grade_row(0, levels);
    BitPlaneMatVec(pool, w.planes, x, levels.data(), y);
    return;
  }
  pool.ParallelFor(rows, [&](int64_t begin, int64_t end) {  // many rows: one row per task
    thread_local std::vector<uint8_t> levels;
    levels.resize(k_in);
    for (int64_t t = begin; t < end; ++t) {
      grade_row(static_cast<int>(t), levels);
      BitPlaneMatVec(w.planes, x + static_cast<size_t>(t) * k_in, levels.data(), y + static_cast<size_t>(t) * n_out);
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
