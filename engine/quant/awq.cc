// AWQ after llm-awq's auto_scale.py / auto_clip.py. Where this differs from that code:
//  - the scale search scores the layers' own outputs, Σ_layers ‖X Wᵀ − X Ŵᵀ‖² / n; the
//    reference runs the enclosing module (for q/k/v the whole attention block, for gate/up
//    the whole MLP) and takes the mean over its output elements;
//  - the quantizer is the project's (quant.h: range [min(lo,0), max(hi,0)], fp16 scale),
//    not pseudo_quantize_tensor's [lo, hi] with an fp32 scale;
//  - the clip search scores every calibration row through G = XᵀX / n instead of a
//    512-token subsample (the same objective, estimated from more data);
//  - the search is in fp32/fp64 rather than fp16.
#include "engine/quant/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/quant/gptq.h"
#include "engine/base/thread_pool.h"

namespace grinqh {
namespace {

using quant::ChooseGroupParams;
using quant::GroupParams;
using quant::QuantizedMatrix;
using quant::QuantizeRtn;
using quant::QuantizeValue;

using quant::At;

// Everything the search needs about the calibration inputs. The output error of a weight
// change δ (one row, original coordinates) is δᵀ G δ averaged over inputs, G = XᵀX / n, so
// after one pass over X every candidate costs O(cols²) per row whatever n is.
struct Calibration {
  int cols = 0;
  std::vector<float> gram;       // XᵀX / n, [cols × cols]
  std::vector<double> mean_abs;  // mean_n |x_nk|, the reference's get_act_scale
};

Calibration Calibrate(std::span<const float> inputs, int n, int cols, int threads) {
  Calibration cal;
  cal.cols = cols;
  HessianAccumulator acc(cols, threads);  // GPTQ's H = 2/n XᵀX, so G = H / 2
  acc.Add(inputs.data(), n);
  cal.gram.resize(acc.hessian().size());
  std::transform(acc.hessian().begin(), acc.hessian().end(), cal.gram.begin(),
                 [](double h) { return static_cast<float>(h / 2); });
  cal.mean_abs.assign(static_cast<size_t>(cols), 0.0);
  for (int t = 0; t < n; ++t) {
    for (int k = 0; k < cols; ++k) cal.mean_abs[k] += std::fabs(inputs[At(t, k, cols)]);
  }
  for (double& m : cal.mean_abs) m /= std::max(n, 1);
  return cal;
}

// s = max(mean_abs^α, 1e-4), divided by sqrt(max s · min s) so the scales straddle 1
// (auto_scale.py's _search_module_scale).
std::vector<float> ScalesFor(const std::vector<double>& mean_abs, double alpha) {
  std::vector<double> s(mean_abs.size());
  std::transform(mean_abs.begin(), mean_abs.end(), s.begin(),
                 [&](double m) { return std::max(std::pow(m, alpha), 1e-4); });
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const double norm = std::sqrt(*lo * *hi);
  std::vector<float> out(s.size());
  std::transform(s.begin(), s.end(), out.begin(), [&](double v) { return static_cast<float>(v / norm); });
  return out;
}

// out[r] = δ_rᵀ G δ_r for `rows` vectors of length len (row r of delta, stride dstride), G
// symmetric (row stride gstride). As Σ_k δ_k (G_kk δ_k + 2 Σ_{j>k} G_kj δ_j) only the upper
// triangle is read, and four vectors at a time share each load of G.
void QuadraticForms(const float* delta, int rows, int len, size_t dstride, const float* gram, size_t gstride,
                    double* out) {
  for (int r0 = 0; r0 < rows; r0 += 4) {
    const int m = std::min(4, rows - r0);
    // A short last group repeats its last vector; those results are dropped.
    const float* d0 = delta + static_cast<size_t>(r0) * dstride;
    const float* d1 = delta + static_cast<size_t>(r0 + std::min(1, m - 1)) * dstride;
    const float* d2 = delta + static_cast<size_t>(r0 + std::min(2, m - 1)) * dstride;
    const float* d3 = delta + static_cast<size_t>(r0 + std::min(3, m - 1)) * dstride;
    double acc[4] = {};
    for (int k = 0; k < len; ++k) {
      const float* g = gram + static_cast<size_t>(k) * gstride;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int j = k + 1; j < len; ++j) {
        s0 += g[j] * d0[j];
        s1 += g[j] * d1[j];
        s2 += g[j] * d2[j];
        s3 += g[j] * d3[j];
      }
      const double gkk = g[k];
      acc[0] += double{d0[k]} * (gkk * d0[k] + 2.0 * s0);
      acc[1] += double{d1[k]} * (gkk * d1[k] + 2.0 * s1);
      acc[2] += double{d2[k]} * (gkk * d2[k] + 2.0 * s2);
      acc[3] += double{d3[k]} * (gkk * d3[k] + 2.0 * s3);
    }
    std::copy(acc, acc + m, out + r0);
  }
}

constexpr int kRowBlock = 8;  // rows per parallel work item

// Σ_r δ_rᵀ G δ_r over the rows of a [rows × cols] delta.
double QuadraticSum(const float* delta, int rows, int cols, const float* gram) {
  std::vector<double> forms(static_cast<size_t>(rows));
  QuadraticForms(delta, rows, cols, static_cast<size_t>(cols), gram, static_cast<size_t>(cols), forms.data());
  return std::accumulate(forms.begin(), forms.end(), 0.0);
}

// One row's fake quantization with the shared RTN quantizer (so it matches QuantizeRtn).
std::vector<float> FakeQuantizeRow(const float* v, int cols, int bits, int group_size) {
  return QuantizeRtn(std::span<const float>(v, static_cast<size_t>(cols)), 1, cols, bits, group_size).Dequantize();
}

// Output error of one layer for scales s: W − dequant(Q(W diag s)) diag(1/s), row blocks in
// parallel. Per-block partial sums are added in order, so the result does not depend on
// the thread count.
double LayerError(const AwqLayer& layer, const std::vector<float>& s, const Calibration& cal,
                  const AwqOptions& options, ThreadPool& pool) {
  const int cols = cal.cols;
  const int blocks = (layer.rows + kRowBlock - 1) / kRowBlock;
  std::vector<double> parts(static_cast<size_t>(blocks), 0.0);
  pool.ParallelFor(blocks, [&](int64_t begin, int64_t end) {
    std::vector<float> delta(static_cast<size_t>(kRowBlock) * static_cast<size_t>(cols));
    std::vector<float> v(static_cast<size_t>(cols));
    for (int64_t b = begin; b < end; ++b) {
      const int r0 = static_cast<int>(b) * kRowBlock, r1 = std::min(layer.rows, r0 + kRowBlock);
      for (int r = r0; r < r1; ++r) {
        const float* w = layer.weights + At(r, 0, cols);
        for (int k = 0; k < cols; ++k) v[k] = w[k] * s[k];
        const std::vector<float> fq = FakeQuantizeRow(v.data(), cols, options.bits, options.group_size);
        for (int k = 0; k < cols; ++k) delta[At(r - r0, k, cols)] = w[k] - fq[k] / s[k];
      }
      parts[b] = QuadraticSum(delta.data(), r1 - r0, cols, cal.gram.data());
    }
  });
  return std::accumulate(parts.begin(), parts.end(), 0.0);
}

// auto_clip for one group of one row of the scaled weights v (in place). Candidates clamp
// v to [−m, m], m = max|v| · (1 − i/clip_grid) for i < clip_grid · max_shrink; each is
// quantized (params from the clamped min/max) and scored by the group's own output error
// against the unclipped weights, δ_gᵀ G_gg δ_g with δ = (v − q) / s. The first strictly
// best candidate wins, so i = 0 (no clipping) is kept unless something beats it.
void ClipGroup(float* v, const float* s, int c0, int c1, const Calibration& cal, const AwqOptions& options) {
  const int len = c1 - c0;
  const int steps = static_cast<int>(options.max_shrink * options.clip_grid);
  if (steps <= 0) return;
  float org_max = 0.f;
  for (int k = c0; k < c1; ++k) org_max = std::max(org_max, std::fabs(v[k]));
  std::vector<float> max_val(static_cast<size_t>(steps)), clamped(static_cast<size_t>(len));
  std::vector<float> delta(static_cast<size_t>(steps) * static_cast<size_t>(len));
  for (int i = 0; i < steps; ++i) {
    max_val[i] = org_max * (1.f - static_cast<float>(i) / static_cast<float>(options.clip_grid));
    for (int k = 0; k < len; ++k) clamped[k] = std::clamp(v[c0 + k], -max_val[i], max_val[i]);
    const auto [lo, hi] = std::minmax_element(clamped.begin(), clamped.end());
    const GroupParams params = ChooseGroupParams(*lo, *hi, options.bits);
    for (int k = 0; k < len; ++k) {
      const float q = params.scale * (static_cast<float>(QuantizeValue(clamped[k], params, options.bits)) - params.zero);
      delta[At(i, k, len)] = (v[c0 + k] - q) / s[c0 + k];
    }
  }
  std::vector<double> err(static_cast<size_t>(steps));
  QuadraticForms(delta.data(), steps, len, static_cast<size_t>(len), &cal.gram[At(c0, c0, cal.cols)],
                 static_cast<size_t>(cal.cols), err.data());
  const float best = max_val[std::min_element(err.begin(), err.end()) - err.begin()];
  for (int k = c0; k < c1; ++k) v[k] = std::clamp(v[k], -best, best);
}

// Q(clip(W diag s)) for one layer.
QuantizedMatrix QuantizeLayer(const AwqLayer& layer, const std::vector<float>& s, const Calibration& cal,
                              const AwqOptions& options, ThreadPool& pool) {
  const int cols = cal.cols;
  std::vector<float> scaled(static_cast<size_t>(layer.rows) * static_cast<size_t>(cols));
  for (int r = 0; r < layer.rows; ++r) {
    for (int k = 0; k < cols; ++k) scaled[At(r, k, cols)] = layer.weights[At(r, k, cols)] * s[k];
  }
  if (options.clip_search && layer.clip) {
    pool.ParallelFor(layer.rows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int c0 = 0; c0 < cols; c0 += options.group_size) {
          ClipGroup(&scaled[At(static_cast<int>(r), 0, cols)], s.data(), c0, std::min(cols, c0 + options.group_size),
                    cal, options);
        }
      }
    });
  }
  return QuantizeRtn(scaled, layer.rows, cols, options.bits, options.group_size);
}

double EffectiveError(const AwqLayer& layer, const QuantizedMatrix& q, const std::vector<float>& s,
                      const Calibration& cal) {
  std::vector<float> delta = AwqEffectiveWeights(q, s);
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = layer.weights[i] - delta[i];
  return QuadraticSum(delta.data(), layer.rows, cal.cols, cal.gram.data());
}

}  // namespace

AwqResult QuantizeAwq(std::span<const AwqLayer> layers, int cols, std::span<const float> inputs, int n,
                      const AwqOptions& options_in) {
  AwqResult result;
  const bool layers_ok = std::all_of(layers.begin(), layers.end(),
                                     [](const AwqLayer& l) { return l.weights != nullptr && l.rows > 0; });
  if (cols <= 0 || n <= 0 || !layers_ok || inputs.size() < static_cast<size_t>(n) * static_cast<size_t>(cols)) {
    return result;  // malformed request: nothing quantized
  }
  AwqOptions options = options_in;
  if (options.group_size <= 0) options.group_size = cols;
  options.grid = std::max(options.grid, 1);
  ThreadPool pool(options.threads);
  const Calibration cal = Calibrate(inputs, n, cols, options.threads);

  // Scale search with plain RTN (no clipping), as the reference does it. Starting from
  // α = 0 (s = 1) keeps a usable answer even if every error came out NaN.
  result.input_scales = ScalesFor(cal.mean_abs, 0.0);
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < options.grid; ++i) {
    const double alpha = static_cast<double>(i) / options.grid;
    const std::vector<float> s = ScalesFor(cal.mean_abs, alpha);
    double err = 0;
    for (const AwqLayer& layer : layers) err += LayerError(layer, s, cal, options, pool);
    result.search_errors.push_back(err);
    if (err < best) {
      best = err;
      result.alpha = alpha;
      result.input_scales = s;
    }
  }
  // Then the clip search on the scaled weights, and the final codes.
  for (const AwqLayer& layer : layers) {
    result.layers.push_back(QuantizeLayer(layer, result.input_scales, cal, options, pool));
    result.error += EffectiveError(layer, result.layers.back(), result.input_scales, cal);
  }
  return result;
}

std::vector<QuantizedMatrix> QuantizeAwq(std::span<const float* const> layer_weights, std::span<const int> layer_rows,
                                         int cols, std::span<const float> inputs, int n, const AwqOptions& options,
                                         std::vector<float>* input_scales) {
  std::vector<AwqLayer> layers;
  for (size_t i = 0; i < layer_weights.size() && i < layer_rows.size(); ++i) {
    layers.push_back({layer_weights[i], layer_rows[i], true});
  }
  AwqResult result = QuantizeAwq(layers, cols, inputs, n, options);
  if (input_scales != nullptr) *input_scales = std::move(result.input_scales);
  return std::move(result.layers);
}

std::vector<float> AwqEffectiveWeights(const QuantizedMatrix& q, std::span<const float> input_scales) {
  if (input_scales.size() != static_cast<size_t>(q.cols)) return {};
  std::vector<float> w = q.Dequantize();
  for (int r = 0; r < q.rows; ++r) {
    for (int k = 0; k < q.cols; ++k) w[At(r, k, q.cols)] /= input_scales[k];
  }
  return w;
}

}  // namespace grinqh
