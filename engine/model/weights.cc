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
  Loader(const TensorLookup& lookup, const PlaneLookup& planes) : lookup_(lookup), planes_(planes) {}

  absl::StatusOr<Matrix> LoadMatrix(const std::string& name, int rows, int cols) {
    auto t = lookup_(name);
    if (!t.ok()) return t.status();
    GRINQH_RETURN_IF_ERROR(CheckShape(*t, {rows, cols}));
    GRINQH_RETURN_IF_ERROR(CheckAligned(*t));
    return Matrix{t->dtype, t->data, rows, cols};
  }

  // A linear layer: in planes when `planes` has it, else a dense tensor.
  absl::StatusOr<LinearWeights> LoadLinear(const std::string& name, int rows, int cols) {
    if (planes_) {
      auto p = planes_(name);
      if (!p.ok()) return p.status();
      if (*p) {
        const BitPlaneShape& shape = (*p)->planes.shape;
        if (shape.rows != rows || shape.cols != cols) {
          return absl::InvalidArgumentError(absl::StrCat("layer \"", name, "\" is stored as [", shape.rows, ", ",
                                                         shape.cols, "], the config implies [", rows, ", ", cols, "]"));
        }
        return LinearWeights{**std::move(p)};
      }
    }
    GRINQH_ASSIGN_OR_RETURN(Matrix m, LoadMatrix(name, rows, cols));
    return LinearWeights{m};
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
  const PlaneLookup& planes_;
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

Matrix FloatMatrix(std::span<const float> values, int rows, int cols) {
  return Matrix{DType::kF32, reinterpret_cast<const std::byte*>(values.data()), rows, cols};
}

int LinearWeights::rows() const {
  const PlaneWeights* p = planes();
  return p ? p->planes.shape.rows : dense()->rows;
}

int LinearWeights::cols() const {
  const PlaneWeights* p = planes();
  return p ? p->planes.shape.cols : dense()->cols;
}

std::vector<float> LinearWeights::ToFloat() const {
  if (const Matrix* m = dense()) return WidenToFloat(*m);
  const PlaneWeights& p = *planes();
  std::vector<float> w = *DequantizeLevel(p.planes, p.planes.shape.stored_planes);  // a valid view: cannot fail
  if (!p.input_scale.empty()) {
    const size_t cols = static_cast<size_t>(p.planes.shape.cols);
    for (size_t i = 0; i < w.size(); ++i) w[i] /= p.input_scale[i % cols];
  }
  return w;
}

size_t ModelWeights::DecodeBytes(float graded_bits) const {
  const auto bytes = [&](const LinearWeights& w) -> size_t {
    if (const Matrix* m = w.dense()) return static_cast<size_t>(m->rows) * m->row_bytes();
    const PlaneWeights& p = *w.planes();
    const BitPlaneShape& shape = p.planes.shape;
    const double params = double(shape.params_size()) * kGroupParamBytes;
    if (graded_bits > 0.f && p.graded()) {
      return static_cast<size_t>(double(shape.rows) * double(shape.cols) * graded_bits / 8 + params);
    }
    return static_cast<size_t>(double(shape.planes_size()) + params);
  };
  size_t total = embed.row_bytes() + bytes(lm_head);
  for (const LayerWeights& l : layers) {
    for (const LinearWeights* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) total += bytes(*w);
  }
  return total;
}

absl::StatusOr<ModelWeights> LoadWeights(const TensorLookup& lookup, const ModelConfig& c, const PlaneLookup& planes) {
  Loader load(lookup, planes);
  ModelWeights w;
  const int q_dim = c.num_heads * c.head_dim;
  const int kv_dim = c.num_kv_heads * c.head_dim;
  GRINQH_ASSIGN_OR_RETURN(w.embed, load.LoadMatrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LayerWeights& l = w.layers.emplace_back();
    GRINQH_ASSIGN_OR_RETURN(l.attn_norm, load.LoadVector(p + "input_layernorm.weight", c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wq, load.LoadLinear(p + "self_attn.q_proj.weight", q_dim, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wk, load.LoadLinear(p + "self_attn.k_proj.weight", kv_dim, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wv, load.LoadLinear(p + "self_attn.v_proj.weight", kv_dim, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.wo, load.LoadLinear(p + "self_attn.o_proj.weight", c.hidden_size, q_dim));
    if (c.qk_norm) {
      GRINQH_ASSIGN_OR_RETURN(l.q_norm, load.LoadVector(p + "self_attn.q_norm.weight", c.head_dim));
      GRINQH_ASSIGN_OR_RETURN(l.k_norm, load.LoadVector(p + "self_attn.k_norm.weight", c.head_dim));
    }
    GRINQH_ASSIGN_OR_RETURN(l.mlp_norm, load.LoadVector(p + "post_attention_layernorm.weight", c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.w_gate, load.LoadLinear(p + "mlp.gate_proj.weight", c.intermediate_size, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.w_up, load.LoadLinear(p + "mlp.up_proj.weight", c.intermediate_size, c.hidden_size));
    GRINQH_ASSIGN_OR_RETURN(l.w_down, load.LoadLinear(p + "mlp.down_proj.weight", c.hidden_size, c.intermediate_size));
  }
  GRINQH_ASSIGN_OR_RETURN(w.final_norm, load.LoadVector("model.norm.weight", c.hidden_size));
  if (c.tie_word_embeddings) {
    w.lm_head = LinearWeights{w.embed};
  } else {
    GRINQH_ASSIGN_OR_RETURN(w.lm_head, load.LoadLinear("lm_head.weight", c.vocab_size, c.hidden_size));
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
