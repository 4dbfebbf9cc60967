// AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization for LLM Compression and
// Acceleration"), a baseline for GRINQH.
//
// Input channels that see large activations matter more, so AWQ scales them up before
// quantizing (their weights get relatively finer steps) and divides the input by the same
// factor: y = W x = (W diag(s)) (diag(1/s) x). Per set of layers sharing one input
// (q/k/v; gate/up; o; down) it searches s = (mean_n |x_nk|)^α over a grid of α, measuring
// the output error on calibration inputs; then (auto_clip) it shrinks each group's range
// where clipping a few outliers lowers that group's output error.
//
// What is stored is Q(W diag(s)); the 1/s belongs to the previous op (RMSNorm weight or the
// previous linear layer) in a real deployment. For evaluation without touching that op,
// fold it into the weights: Ŵ = dequant(Q(W diag(s))) · diag(1/s) = AwqEffectiveWeights.
#pragma once

#include <span>
#include <vector>

#include "engine/quant/quant.h"

namespace grinqh {

struct AwqOptions {
  int bits = 4;
  int group_size = 128;
  int grid = 20;  // α ∈ {0, 1/grid, ..., (grid − 1)/grid}
  bool clip_search = true;
  int clip_grid = 20;  // shrink factors 1 − i/clip_grid, i < clip_grid · max_shrink
  double max_shrink = 0.5;
  int threads = 0;  // 0: one per hardware thread
};

// One linear layer of a set sharing the same input.
struct AwqLayer {
  const float* weights = nullptr;  // [rows × cols], row-major, y = W x
  int rows = 0;
  // The reference skips the clip search for q and k projections: their outputs meet in
  // q·kᵀ, so a per-layer output error misjudges them. Set false for those.
  bool clip = true;
};

struct AwqResult {
  std::vector<quant::QuantizedMatrix> layers;  // Q(clip(W diag(s))), one per layer, in input order
  std::vector<float> input_scales;      // s, [cols]
  double alpha = 0;                     // the exponent chosen
  // Output error for each α tried (index i ↔ α = i/grid): mean over calibration inputs of
  // Σ_layers ‖(W − Ŵ_α) x‖², before the clip search.
  std::vector<double> search_errors;
  double error = 0;  // the same measure for the final weights (after the clip search)
};

// inputs: [n × cols] calibration inputs of the layers (a subsample of a few thousand rows
// is typical; the cost of the search does not grow with n beyond one Gram matrix).
// A malformed request (null weights, rows ≤ 0, too few inputs) returns an empty result.
// Cost: grid · Σ rows · cols² for the search plus Σ rows · cols · group_size · 10 for the
// clip search (gate+up of 2 × 1536 × 512 with n = 4096: about 0.9 s on 2 cores).
AwqResult QuantizeAwq(std::span<const AwqLayer> layers, int cols, std::span<const float> inputs, int n,
                      const AwqOptions& options);

// The same with plain arrays: every layer clipped (when options.clip_search).
std::vector<quant::QuantizedMatrix> QuantizeAwq(std::span<const float* const> layer_weights,
                                                std::span<const int> layer_rows, int cols,
                                                std::span<const float> inputs, int n, const AwqOptions& options,
                                                std::vector<float>* input_scales);

// The fp32 weights the quantized layer computes with when the input is the original x:
// dequant(q) · diag(1/s), [rows × cols].
std::vector<float> AwqEffectiveWeights(const quant::QuantizedMatrix& q, std::span<const float> input_scales);

}  // namespace grinqh
