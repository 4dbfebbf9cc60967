// Baseline quantization of a loaded model: RTN, GPTQ and AWQ at a fixed bit width,
// evaluated as fake-quantized weights (codes dequantized to fp32) on the same CPU engine.
//
// GPTQ and AWQ calibrate layer by layer, in order: the inputs of decoder layer l are
// computed with layers < l already quantized, as the reference implementations do.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backends/backend.h"
#include "engine/quant/bit_planes.h"
#include "engine/backends/cpu/cpu_backend.h"
#include "engine/serving/model.h"
#include "engine/quant/quant.h"

namespace grinqh {

// The norm of each input channel's column of a [rows × cols] matrix, rounded to fp16 (as
// bits): GRINQH's grading statistic c_k (the importance of channel k is |x_k| · c_k).
std::vector<uint16_t> ColumnNormsF16(std::span<const float> weights, int rows, int cols);

// GRINQH's store of one [rows × cols] matrix: round-to-nearest 8-bit codes in groups of
// `group_size`, packed into bit planes keeping the top `max_bits`; the weights read at that
// full stored depth; and the grading statistic (ColumnNormsF16) of those weights.
struct NestedStore {
  quant::QuantizedMatrix codes;
  BitPlaneMatrix planes;
  std::vector<float> full_depth;
  std::vector<uint16_t> channel_scale;
};
absl::StatusOr<NestedStore> QuantizeNested(std::span<const float> weights, int rows, int cols, int group_size,
                                           int max_bits);

// GradeRowByGains' table for a matrix: per input channel, how much the column's squared
// error against `weights` drops with each level read, [cols × max_level].
std::vector<float> LevelGains(std::span<const float> weights, const quant::QuantizedMatrix& q, int max_level);

// GradeRow's calibrated level thresholds for a matrix (max_level values): from the layer's
// error curve relative to skipping, averaged over its columns, so that a level whose bits
// buy little (level 1, typically) waits until the next one is worth taking with it.
std::vector<float> LevelThresholds(std::span<const float> weights, const quant::QuantizedMatrix& q, int max_level);

// Consecutive, non-overlapping windows of `length` tokens, at most `max_windows` of them.
std::vector<std::vector<int32_t>> MakeWindows(std::span<const int32_t> ids, int length, int max_windows);
// The same over a text file, tokenized by the model's tokenizer without special tokens
// (docs/METHOD.md §3). Empty when the text is shorter than one window.
absl::StatusOr<std::vector<std::vector<int32_t>>> TextWindows(const Model& model, const std::filesystem::path& path,
                                                              int length, int max_windows);

struct BaselineOptions {
  std::string method = "rtn";  // rtn | gptq | awq | grinqh (nested 8-bit codes, graded at decode)
  int bits = 4;                // stored bits per weight (grinqh: the depth of the hierarchy)
  int group_size = 128;
  // GRINQH's grading rule: "statistic" (water-filling on |x_k| · column norm), "gains"
  // (each channel's measured error curve, GradeRowByGains: a table of max_level floats per
  // channel) or "curve" (water-filling with the layer's LevelThresholds). The last two are
  // research options for `eval` (their metadata counted in effective bits), not in files.
  std::string grading = "statistic";

  std::string Name() const;         // e.g. "gptq-3"
};

// Called as calibration proceeds: what is being done, and how far along (0..1).
using ProgressFn = std::function<void(const std::string& stage, double fraction)>;

// Receives each layer of a fixed-width baseline as it is quantized: its codes and
// parameters, and AWQ's input scales (the weights are dequant(q) · diag(1/s); empty for
// RTN and GPTQ). What a .grinqh file of the baseline stores.
using QuantizedLayerSink = std::function<absl::Status(const LinearLayerRef& layer, const quant::QuantizedMatrix& q,
                                                      std::span<const float> input_scales)>;

// The base model with every linear layer (LM head included, untied from the embedding)
// replaced by its quantized weights. Shares embedding and norms with the base model,
// which must outlive it.
class QuantizedVariant {
 public:
  static absl::StatusOr<std::unique_ptr<QuantizedVariant>> Create(
      const Model& base, const BaselineOptions& options,
      std::span<const std::vector<int32_t>> calibration, const ProgressFn& progress = {},
      const QuantizedLayerSink& sink = {});

  const BaselineOptions& options() const { return options_; }
  Backend& backend() { return *backend_; }
  const ModelWeights& weights() const { return weights_; }
  // GRINQH with a research grading rule (gains, curve): the bytes of its per-layer tables.
  size_t grading_table_bytes() const;

 private:
  QuantizedVariant() = default;
  void Replace(LinearWeights& layer, std::vector<float> values);
  // GRINQH: nested 8-bit codes in bit planes, plus the grading statistic.
  absl::Status MakeNested(LinearWeights& layer);
  // The CPU backend over the weights as quantized so far (made again after a change: it
  // prepares its weights once).
  absl::Status MakeBackend();
  absl::Status QuantizeLayers(int layer, std::span<const std::vector<int32_t>> calibration,
                              const ProgressFn& progress);
  // AWQ for the layers of one decoder layer, from subsampled inputs per site.
  absl::Status QuantizeAwqSites(const std::vector<LinearLayerRef>& targets,
                                const std::map<LinearSite, std::vector<float>>& samples,
                                const std::map<LinearSite, int>& sample_cols);

  BaselineOptions options_;
  QuantizedLayerSink sink_;
  ModelConfig config_;
  ModelWeights weights_;
  int num_threads_ = 0;
  std::vector<std::vector<float>> storage_;  // the fp32 weights that replaced the views
  std::vector<std::unique_ptr<BitPlaneMatrix>> planes_;  // GRINQH: the nested stores
  std::vector<std::vector<uint16_t>> channel_scales_;    // and their grading statistics
  // Research grading rules' tables (LevelGains, LevelThresholds), by the layer's planes.
  std::map<const uint8_t*, std::vector<float>> grading_tables_;
  std::unique_ptr<CpuBackend> backend_;
};

}  // namespace grinqh
