// The decoder's weights as views into the memory-mapped checkpoint.
//
// Matrices stay in their stored dtype (bf16 for published checkpoints) and are widened
// to fp32 on the fly, so resident memory stays near the checkpoint's size. Norm weights
// are tiny and are copied to fp32 once.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/quant/bit_planes.h"
#include "engine/quant/grading.h"
#include "engine/model/model_config.h"
#include "engine/model/safetensors.h"

namespace grinqh {

// A dense row-major [rows × cols] matrix in a stored dtype: y = W x maps cols → rows. A
// checkpoint's tensor viewed in place, or fp32 values a backend or a tool owns.
struct Matrix {
  DType dtype = DType::kF32;
  const std::byte* data = nullptr;
  int rows = 0;
  int cols = 0;

  size_t row_bytes() const { return static_cast<size_t>(cols) * DTypeSize(dtype); }
  const std::byte* row(int r) const { return data + static_cast<size_t>(r) * row_bytes(); }
};

// A linear layer stored as codes in bit planes (engine/quant/bit_planes.h): GRINQH's nested
// 8-bit store, graded at decode, or a fixed-width baseline's N-bit codes (RTN, GPTQ, AWQ),
// read at their width. Views: the bytes live in the mapped .grinqh file (or with whoever
// quantized the layer).
struct PlaneWeights {
  BitPlaneView planes;
  // GRINQH: c_k of the grading rule (fp16 bits), one per input channel. Empty for a
  // fixed-width baseline, which is never graded.
  std::span<const uint16_t> channel_scale;
  // AWQ: W = dequant(codes) · diag(1 / input_scale). Empty otherwise.
  std::span<const float> input_scale;
  // GRINQH: this layer's calibrated share of the model-wide target; empty: the target itself.
  LayerSchedule schedule;

  bool graded() const { return !channel_scale.empty(); }
  int max_level() const { return planes.shape.stored_planes; }
};

// A linear layer's weights as the model holds them, dense or in planes. Each backend
// prepares what it computes with from this (the CPU backend widens planes to fp32 for its
// full-depth rows; a GPU backend uploads the planes).
struct LinearWeights {
  std::variant<Matrix, PlaneWeights> stored;

  int rows() const;
  int cols() const;
  const Matrix* dense() const { return std::get_if<Matrix>(&stored); }
  const PlaneWeights* planes() const { return std::get_if<PlaneWeights>(&stored); }
  // The weights at full stored depth, [rows × cols] fp32 (AWQ's input scales applied).
  std::vector<float> ToFloat() const;
};

struct LayerWeights {
  std::vector<float> attn_norm;         // input_layernorm
  LinearWeights wq, wk, wv, wo;         // self_attn.{q,k,v,o}_proj
  std::vector<float> q_norm, k_norm;    // Qwen3 only: per-head RMSNorm weights
  std::vector<float> mlp_norm;          // post_attention_layernorm
  LinearWeights w_gate, w_up, w_down;   // mlp.{gate,up,down}_proj
};

struct ModelWeights {
  Matrix embed;                         // [vocab × hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  LinearWeights lm_head;                // [vocab × hidden]; the embedding when tied

  // Weight bytes one decode step reads: every linear layer once, one embedding row. With
  // `graded_bits` > 0, a graded layer counts graded_bits per weight of planes plus its
  // groups' scales and zeros (the nominal GRINQH read); otherwise a layer in planes counts
  // every plane and parameter it stores.
  size_t DecodeBytes(float graded_bits = 0.f) const;
};

// Where LoadWeights finds a tensor by its Hugging Face name: a checkpoint, or a .grinqh file.
using TensorLookup = std::function<absl::StatusOr<TensorView>(const std::string& name)>;

// Where LoadWeights finds a linear layer stored in planes, by its weight's name: the
// layer, or nullopt when it is stored as a plain tensor (then TensorLookup has it).
using PlaneLookup = std::function<absl::StatusOr<std::optional<PlaneWeights>>(const std::string& name)>;

// Finds every tensor the config implies, checking names, shapes and dtypes.
// The views stay valid while what `lookup` (and `planes`) read from lives.
absl::StatusOr<ModelWeights> LoadWeights(const TensorLookup& lookup, const ModelConfig& config,
                                         const PlaneLookup& planes = {});

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
  LinearWeights* weights;
};
// Every linear layer, in forward order, the LM head last (untied from the embedding).
std::vector<LinearLayerRef> LinearLayers(ModelWeights& weights, const ModelConfig& config);

// Widens n elements of a stored vector/row to fp32.
void WidenToFloat(DType dtype, const std::byte* src, float* dst, size_t n);
// A whole matrix, widened to fp32 [rows × cols].
std::vector<float> WidenToFloat(const Matrix& m);
// An fp32 matrix viewing `values` (which must outlive it).
Matrix FloatMatrix(std::span<const float> values, int rows, int cols);

}  // namespace grinqh
