#include "engine/model/weights.h"

#include <bit>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/half.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

// Weights are read in place as arrays of their element type, which needs natural
// alignment; files written by Hugging Face always have it.
absl::Status CheckAligned(const TensorView& t) {
  if (reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\" is not aligned to its ",
                                                   DTypeSize(t.dtype), "-byte elements in the file"));
  }
  return absl::OkStatus();
}

absl::Status CheckShape(const TensorView& t, std::vector<int64_t> want) {
  if (t.shape != want) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\" has shape [",
                                                   absl::StrJoin(t.shape, ", "), "], the config implies [",
                                                   absl::StrJoin(want, ", "), "]"));
  }
  return absl::OkStatus();
}

class Loader {
 public:
  explicit Loader(const TensorLookup& lookup) : lookup_(lookup) {}

  absl::StatusOr<Matrix> LoadMatrix(const std::string& name, int rows, int cols) {
    auto t = lookup_(name);
    if (!t.ok()) return t.status();
    GRINQH_RETURN_IF_ERROR(CheckShape(*t, {rows, cols}));
    GRINQH_RETURN_IF_ERROR(CheckAligned(*t));
    return Matrix{t->dtype, t->data, rows, cols};
  }

  absl::StatusOr<std::vector<float>> LoadVector(const std::string& name, int size) {
    auto t = lookup_(name);
    if (!t.ok()) return t.status();
    GRINQH_RETURN_IF_ERROR(CheckShape(*t, {size}));
    GRINQH_RETURN_IF_ERROR(CheckAligned(*t));
    std::vector<float> v(static_cast<size_t>(size));
    WidenToFloat(t->dtype, t->data, v.data(), v.size());
    return v;
  }

 private:
  const TensorLookup& lookup_;
};

}  // namespace

void WidenToFloat(DType dtype, const std::byte* src, float* dst, size_t n) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kBF16: {
      const auto* s = reinterpret_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(static_cast<uint32_t>(s[i]) << 16);
      return;
    }
    case DType::kF16: {
      const auto* s = reinterpret_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = HalfToFloat(s[i]);
      return;
    }
    case DType::kU8:
    case DType::kU16:
      return;  // never a weight: the loaders refuse tensors that are not float
  }
}

std::vector<float> WidenToFloat(const Matrix& m) {
  std::vector<float> out(static_cast<size_t>(m.rows) * static_cast<size_t>(m.cols));
  WidenToFloat(m.dtype, m.data, out.data(), out.size());
  return out;
}

size_t ModelWeights::DecodeBytes(float graded_bits) const {
  const auto bytes = [&](const Matrix& m) {
    if (graded_bits > 0.f && m.nested != nullptr) {
      const BitPlaneShape& shape = m.nested->planes.shape;
      const double weights = double(m.rows) * double(m.cols);
      return static_cast<size_t>(weights * graded_bits / 8 + double(shape.params_size()) * kGroupParamBytes);
    }
    return static_cast<size_t>(m.rows) * m.row_bytes();
  };
  size_t total = embed.row_bytes() + bytes(lm_head);
  for (const LayerWeights& l : layers) {
    for (const Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) total += bytes(*m);
  }
  return total;
}

absl::StatusOr<ModelWeights> LoadWeights(const TensorLookup& lookup, const ModelConfig& c) {
  Loader load(lookup);
  ModelWeights w;
  const int q_dim = c.num_heads * c.head_dim;
  const int kv_dim = c.num_kv_heads * c.head_dim;
  GRINQH_ASSIGN_OR_RETURN(w.embed, load.LoadMatrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LayerWeights& l = w.layers.emplace_back();
    GRINQH_ASSIGN_OR_RETURN(l.attn_norm, load.LoadVector(p + "input_layernorm.weight", c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wq, load.LoadMatrix(p + "self_attn.q_proj.weight", q_dim, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wk, load.LoadMatrix(p + "self_attn.k_proj.weight", kv_dim, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wv, load.LoadMatrix(p + "self_attn.v_proj.weight", kv_dim, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wo, load.LoadMatrix(p + "self_attn.o_proj.weight", c.hidden_size, q_dim));
    if (c.qk_norm) {
      GRINQH_ASSIGN_OR_RETURN(l.q_norm, load.LoadVector(p + "self_attn.q_norm.weight", c.head_dim));
      GRINQH_ASSIGN_OR_RETURN(l.k_norm, load.LoadVector(p + "self_attn.k_norm.weight", c.head_dim));
    }
    GRINQH_ASSIGN_OR_RETURN(l.mlp_norm, load.LoadVector(p + "post_attention_layernorm.weight", c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.w_gate, load.LoadMatrix(p + "mlp.gate_proj.weight", c.intermediate_size, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.w_up, load.LoadMatrix(p + "mlp.up_proj.weight", c.intermediate_size, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.w_down, load.LoadMatrix(p + "mlp.down_proj.weight", c.hidden_size, c.intermediate_size));
  }
  GRINQH_ASSIGN_OR_RETURN(w.final_norm, load.LoadVector("model.norm.weight", c.hidden_size));
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    GRINQH_ASSIGN_OR_RETURN(w.lm_head, load.LoadMatrix("lm_head.weight", c.vocab_size, c.hidden_size));
  }
  return w;
}

std::vector<LinearLayerRef> LinearLayers(ModelWeights& weights, const ModelConfig& config) {
  std::vector<LinearLayerRef> out;
  for (int i = 0; i < config.num_layers; ++i) {
    LayerWeights& l = weights.layers[static_cast<size_t>(i)];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    out.push_back({p + "self_attn.q_proj.weight", i, LinearSite::kAttentionInput, &l.wq});
    out.push_back({p + "self_attn.k_proj.weight", i, LinearSite::kAttentionInput, &l.wk});
    out.push_back({p + "self_attn.v_proj.weight", i, LinearSite::kAttentionInput, &l.wv});
    out.push_back({p + "self_attn.o_proj.weight", i, LinearSite::kAttentionOutput, &l.wo});
    out.push_back({p + "mlp.gate_proj.weight", i, LinearSite::kMlpInput, &l.w_gate});
    out.push_back({p + "mlp.up_proj.weight", i, LinearSite::kMlpInput, &l.w_up});
    out.push_back({p + "mlp.down_proj.weight", i, LinearSite::kMlpOutput, &l.w_down});
  }
  out.push_back({"lm_head.weight", config.num_layers, LinearSite::kLmHead, &weights.lm_head});
  return out;
}

}  // namespace grinqh
