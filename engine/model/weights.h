// The decoder's weights as views into the memory-mapped checkpoint.
//
// Matrices stay in their stored dtype (bf16 for published checkpoints) and are widened
// to fp32 on the fly, so resident memory stays near the checkpoint's size. Norm weights
// are tiny and are copied to fp32 once.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/quant/bit_planes.h"
#include "engine/quant/grading.h"
#include "engine/model/model_config.h"
#include "engine/model/safetensors.h"

namespace grinqh {

struct NestedLinear;

// A row-major [rows × cols] matrix in the checkpoint's dtype: y = W x maps cols → rows.
struct Matrix {
  DType dtype = DType::kF32;
  const std::byte* data = nullptr;
  int rows = 0;
  int cols = 0;
  // GRINQH's nested weights, when the layer has them: graded rows read these instead.
  const NestedLinear* nested = nullptr;

  size_t row_bytes() const { return static_cast<size_t>(cols) * DTypeSize(dtype); }
  const std::byte* row(int r) const { return data + static_cast<size_t>(r) * row_bytes(); }
};

// One linear layer stored as GRINQH's nested 8-bit codes (engine/quant/bit_planes.h), as the
// CPU backend reads it when a row is graded; the dense Matrix beside it is the full-depth
// weights that ungraded rows (prefill) use.
struct NestedLinear {
  BitPlaneView planes;
  std::vector<uint16_t> channel_scale;  // c_k of the grading rule (fp16 bits), one per input channel
  // When not empty, grading follows each channel's measured error curve instead
  // (GradeRowByGains): [cols × max_level] gains.
  std::vector<float> level_gains;
  // GradeRow's calibrated level thresholds (empty: plain rounding, water-filling).
  std::vector<float> level_thresholds;
  // This layer's calibrated share of the model-wide target; empty: the target itself.
  LayerSchedule schedule;
  int max_level() const { return planes.shape.stored_planes; }
};

struct LayerWeights {
  std::vector<float> attn_norm;         // input_layernorm
  Matrix wq, wk, wv, wo;                // self_attn.{q,k,v,o}_proj
  std::vector<float> q_norm, k_norm;    // Qwen3 only: per-head RMSNorm weights
  std::vector<float> mlp_norm;          // post_attention_layernorm
  Matrix w_gate, w_up, w_down;          // mlp.{gate,up,down}_proj
};

struct ModelWeights {
  Matrix embed;                         // [vocab × hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  Matrix lm_head;                       // [vocab × hidden]; the embedding when tied

  // Weight bytes one decode step reads: every matrix once, one embedding row. With
  // `graded_bits` > 0, a matrix with nested weights counts graded_bits per weight of
  // planes plus its groups' scales and zeros (the nominal GRINQH read).
  size_t DecodeBytes(float graded_bits = 0.f) const;
};

// Where LoadWeights finds a tensor by its Hugging Face name: a checkpoint, or a .grinqh file.
using TensorLookup = std::function<absl::StatusOr<TensorView>(const std::string& name)>;

// Finds every tensor the config implies, checking names, shapes and dtypes.
// The views stay valid while what `lookup` reads from lives.
absl::StatusOr<ModelWeights> LoadWeights(const TensorLookup& lookup, const ModelConfig& config);

// Where a linear layer's input comes from, for tools that watch those inputs (calibration).
enum class LinearSite {
  kAttentionInput,   // normed residual → q, k, v
  kAttentionOutput,  // attention output → o
  kMlpInput,         // normed residual → gate, up
  kMlpOutput,        // silu(gate) · up → down
  kLmHead,           // final normed residual → logits (only rows whose logits are computed)
};

// A linear layer of the decoder or the LM head, by its Hugging Face tensor name.
struct LinearLayerRef {
  std::string name;
  int layer;        // decoder layer; num_layers for the LM head
  LinearSite site;  // whose input it reads
  Matrix* matrix;
};
// Every linear layer, in forward order, the LM head last (untied from the embedding).
std::vector<LinearLayerRef> LinearLayers(ModelWeights& weights, const ModelConfig& config);

// Widens n elements of a stored vector/row to fp32.
void WidenToFloat(DType dtype, const std::byte* src, float* dst, size_t n);
// A whole matrix, widened to fp32 [rows × cols].
std::vector<float> WidenToFloat(const Matrix& m);

}  // namespace grinqh
