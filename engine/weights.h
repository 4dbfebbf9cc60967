// The decoder's weights as views into the memory-mapped checkpoint.
//
// Matrices stay in their stored dtype (bf16 for published checkpoints) and are widened
// to fp32 on the fly, so resident memory stays near the checkpoint's size. Norm weights
// are tiny and are copied to fp32 once.
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"

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

// One linear layer stored as nested 8-bit codes, as the CPU backend reads it when a row is
// graded: the weights read at each level, and the per-channel statistic of the grading rule.
struct NestedLinear {
  int max_level = 8;
  std::vector<Matrix> levels;        // levels[b] for b = 1..max_level ([0] unused), fp32
  std::vector<float> channel_scale;  // c_k of the grading rule, one per input channel
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

  // Weight bytes one decode step reads: every matrix once, one embedding row.
  size_t DecodeBytes() const;
};

// Finds every tensor the config implies, checking names, shapes and dtypes.
// The views stay valid while `checkpoint` lives.
absl::StatusOr<ModelWeights> LoadWeights(const Checkpoint& checkpoint, const ModelConfig& config);

// Widens n elements of a stored vector/row to fp32.
void WidenToFloat(DType dtype, const std::byte* src, float* dst, size_t n);

}  // namespace grinqh
