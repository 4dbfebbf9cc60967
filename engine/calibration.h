// Baseline quantization of a loaded model: RTN, GPTQ and AWQ at a fixed bit width,
// evaluated as fake-quantized weights (codes dequantized to fp32) on the same CPU engine.
//
// GPTQ and AWQ calibrate layer by layer, in order: the inputs of decoder layer l are
// computed with layers < l already quantized, as the reference implementations do.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/cpu_backend.h"
#include "engine/model.h"

namespace grinqh {

// Consecutive, non-overlapping windows of `length` tokens, at most `max_windows` of them.
std::vector<std::vector<int32_t>> MakeWindows(std::span<const int32_t> ids, int length, int max_windows);

// A linear layer of the decoder or the LM head, as calibration sees it.
struct LinearLayerRef {
  std::string name;  // the Hugging Face tensor name
  int layer;         // decoder layer; num_layers for the LM head
  LinearSite site;   // whose input it reads
  Matrix* matrix;
};
std::vector<LinearLayerRef> LinearLayers(ModelWeights& weights, const ModelConfig& config);

struct BaselineOptions {
  std::string method = "rtn";  // rtn | gptq | awq | grinqh (nested 8-bit codes, graded at decode)
  int bits = 4;                // stored bits per weight (grinqh: the depth of the hierarchy)
  int group_size = 128;

  std::string Name() const;         // e.g. "gptq-3"
  // Bits read per weight, an fp16 scale and zero per group included. GRINQH reads
  // `decode_bits` on average (its graded target); fixed-width methods read all their bits.
  double EffectiveBits(double decode_bits = 0) const;
};

// Called as calibration proceeds: what is being done, and how far along (0..1).
using ProgressFn = std::function<void(const std::string& stage, double fraction)>;

// The base model with every linear layer (LM head included, untied from the embedding)
// replaced by its quantized weights. Shares embedding and norms with the base model,
// which must outlive it.
class QuantizedVariant {
 public:
  static absl::StatusOr<std::unique_ptr<QuantizedVariant>> Create(
      const Model& base, const BaselineOptions& options,
      std::span<const std::vector<int32_t>> calibration, const ProgressFn& progress = {});

  const BaselineOptions& options() const { return options_; }
  Backend& backend() { return *backend_; }

 private:
  QuantizedVariant() = default;
  void Replace(Matrix& matrix, std::vector<float> values);
  // Nested codes for GRINQH: every level's weights plus the grading statistic.
  void MakeNested(Matrix& matrix);
  absl::Status QuantizeLayers(int layer, std::span<const std::vector<int32_t>> calibration,
                              const ProgressFn& progress);
  // AWQ for the layers of one decoder layer, from subsampled inputs per site.
  absl::Status QuantizeAwqSites(const std::vector<LinearLayerRef>& targets,
                                const std::map<LinearSite, std::vector<float>>& samples,
                                const std::map<LinearSite, int>& sample_cols);

  BaselineOptions options_;
  ModelConfig config_;
  ModelWeights weights_;
  std::vector<std::vector<float>> storage_;  // the fp32 weights that replaced the views
  std::vector<std::unique_ptr<NestedLinear>> nested_;
  std::unique_ptr<CpuBackend> backend_;
};

}  // namespace grinqh
