#include "engine/backends/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/backends/cpu/cpu_ops.h"

namespace grinqh {
namespace {

// Keys and values of every cached position, fp32, one contiguous block per layer:
// [position × kv_heads × head_dim].
class CpuKvCache : public KvCache {
 public:
  explicit CpuKvCache(int num_layers) : keys(static_cast<size_t>(num_layers)), values(keys.size()) {}
  int length() const override { return length_; }
  void Truncate(int length) override { length_ = std::min(length_, std::max(0, length)); }

  std::vector<std::vector<float>> keys, values;
  int length_ = 0;
};

size_t Rows(int rows, int width) { return static_cast<size_t>(rows) * static_cast<size_t>(width); }

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const ModelConfig& config,
                                                               const ModelWeights& weights,
                                                               int num_threads) {
  if (config.head_dim > 1024 || config.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("head_dim ", config.head_dim,
                                                   " is not supported (even, at most 1024)"));
  }
  return std::unique_ptr<CpuBackend>(new CpuBackend(config, weights, num_threads));
}

CpuBackend::CpuBackend(const ModelConfig& config, const ModelWeights& weights, int num_threads)
    : config_(config), weights_(weights), inv_freq_(RopeInverseFrequencies(config)), pool_(num_threads) {}

std::unique_ptr<KvCache> CpuBackend::NewCache() const {
  return std::make_unique<CpuKvCache>(config_.num_layers);
}

absl::Status CpuBackend::Forward(std::span<const ForwardItem> items, std::vector<float>& logits) {
  const ModelConfig& c = config_;
  const int hidden = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  const float eps = static_cast<float>(c.rms_norm_eps);

  // Validate the whole batch before touching any cache, so a bad item changes nothing.
  int rows = 0, logit_rows = 0;
  for (const ForwardItem& item : items) {
    if (item.cache == nullptr || item.tokens.empty()) return absl::InvalidArgumentError("empty forward item");
    for (int32_t id : item.tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("token id ", id, " is outside the vocabulary [0, ",
                                                       c.vocab_size, ")"));
      }
    }
    if (!(item.target_bits >= 0.f && item.target_bits <= 8.f)) {
      return absl::InvalidArgumentError(absl::StrCat("target bits ", item.target_bits, " is outside [0, 8]"));
    }
    const int n = static_cast<int>(item.tokens.size());
    if (item.cache->length() + n > c.max_position_embeddings) {
      return absl::OutOfRangeError(absl::StrCat("sequence of ", item.cache->length() + n,
                                                " tokens exceeds the context length ", c.max_position_embeddings));
    }
    rows += n;
    logit_rows += item.all_logits ? n : 1;
  }

  positions_.clear();
  row_targets_.clear();
  head_targets_.clear();
  x_.resize(Rows(rows, hidden));
  xn_.resize(Rows(rows, hidden));
  q_.resize(Rows(rows, q_dim));
  k_.resize(Rows(rows, kv_dim));
  v_.resize(Rows(rows, kv_dim));
  attn_.resize(Rows(rows, q_dim));
  gate_.resize(Rows(rows, c.intermediate_size));
  up_.resize(Rows(rows, c.intermediate_size));

  // Embed every token and note its position in its sequence.
  int r = 0;
  for (const ForwardItem& item : items) {
    for (size_t t = 0; t < item.tokens.size(); ++t, ++r) {
      positions_.push_back(item.cache->length() + static_cast<int>(t));
      row_targets_.push_back(item.target_bits);
      if (item.all_logits || t + 1 == item.tokens.size()) head_targets_.push_back(item.target_bits);
      WidenToFloat(weights_.embed.dtype, weights_.embed.row(item.tokens[t]), &x_[Rows(r, hidden)],
                   static_cast<size_t>(hidden));
    }
    auto* cache = static_cast<CpuKvCache*>(item.cache);
    const size_t new_length = static_cast<size_t>(cache->length() + static_cast<int>(item.tokens.size()));
    for (int l = 0; l < c.num_layers; ++l) {
      cache->keys[l].resize(new_length * static_cast<size_t>(kv_dim));
      cache->values[l].resize(new_length * static_cast<size_t>(kv_dim));
    }
  }

  const int layers = std::min(c.num_layers, layer_limit_);
  for (int l = 0; l < layers; ++l) {
    const LayerWeights& w = weights_.layers[l];

    // Attention block: x += o_proj(attention(rope(q), rope(k), v)) over the normed input.
    for (int i = 0; i < rows; ++i) cpu::RmsNorm(&x_[Rows(i, hidden)], w.attn_norm.data(), &xn_[Rows(i, hidden)], hidden, eps);
    Observe(l, LinearSite::kAttentionInput, xn_, rows, hidden);
    Linear(xn_.data(), rows, {{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}});
    for (int i = 0; i < rows; ++i) {
      float* q = &q_[Rows(i, q_dim)];
      float* k = &k_[Rows(i, kv_dim)];
      if (c.qk_norm) {  // Qwen3 normalizes each head of q and k before the rotation
        for (int h = 0; h < c.num_heads; ++h) cpu::RmsNorm(q + h * c.head_dim, w.q_norm.data(), q + h * c.head_dim, c.head_dim, eps);
        for (int h = 0; h < c.num_kv_heads; ++h) cpu::RmsNorm(k + h * c.head_dim, w.k_norm.data(), k + h * c.head_dim, c.head_dim, eps);
      }
      cpu::ApplyRope(q, c.num_heads, c.head_dim, positions_[i], inv_freq_.data());
      cpu::ApplyRope(k, c.num_kv_heads, c.head_dim, positions_[i], inv_freq_.data());
    }
    Attention(l, items);
    Observe(l, LinearSite::kAttentionOutput, attn_, rows, q_dim);
    Linear(attn_.data(), rows, {{&w.wo, xn_.data()}});
    for (size_t i = 0; i < Rows(rows, hidden); ++i) x_[i] += xn_[i];

    // MLP block: x += down(silu(gate(x)) * up(x)) over the normed input.
    for (int i = 0; i < rows; ++i) cpu::RmsNorm(&x_[Rows(i, hidden)], w.mlp_norm.data(), &xn_[Rows(i, hidden)], hidden, eps);
    Observe(l, LinearSite::kMlpInput, xn_, rows, hidden);
    Linear(xn_.data(), rows, {{&w.w_gate, gate_.data()}, {&w.w_up, up_.data()}});
    cpu::SiluMul(gate_.data(), up_.data(), gate_.data(), rows * c.intermediate_size);
    Observe(l, LinearSite::kMlpOutput, gate_, rows, c.intermediate_size);
    Linear(gate_.data(), rows, {{&w.w_down, xn_.data()}});
    for (size_t i = 0; i < Rows(rows, hidden); ++i) x_[i] += xn_[i];
  }

  if (layers < c.num_layers) {  // calibration stopped early: no logits
    for (const ForwardItem& item : items) static_cast<CpuKvCache*>(item.cache)->length_ += static_cast<int>(item.tokens.size());
    logits.clear();
    return absl::OkStatus();
  }

  // Final norm and LM head, only on the rows whose logits were asked for.
  int out = 0;
  r = 0;
  for (const ForwardItem& item : items) {
    const int n = static_cast<int>(item.tokens.size());
    for (int t = item.all_logits ? 0 : n - 1; t < n; ++t, ++out) {
      cpu::RmsNorm(&x_[Rows(r + t, hidden)], weights_.final_norm.data(), &xn_[Rows(out, hidden)], hidden, eps);
    }
    r += n;
    static_cast<CpuKvCache*>(item.cache)->length_ += n;
  }
  Observe(c.num_layers, LinearSite::kLmHead, xn_, logit_rows, hidden);
  logits.resize(Rows(logit_rows, c.vocab_size));
  Linear(xn_.data(), logit_rows, {{&weights_.lm_head, logits.data()}}, /*head=*/true);
  return absl::OkStatus();
}

void CpuBackend::Linear(const float* x, int rows, std::initializer_list<cpu::MatMulOutput> outputs, bool head) {
  const std::vector<float>& targets = head ? head_targets_ : row_targets_;
  if (outputs.begin()->w->nested == nullptr) {
    cpu::MatMul(pool_, x, rows, outputs);
    return;
  }
  // Graded rows read the nested planes, the others the dense full-depth weights, each
  // row by its own target whatever shares the batch. Runs of alike rows go together (the
  // scheduler puts decodes first, so a mixed batch is usually two runs).
  const size_t k_in = static_cast<size_t>(outputs.begin()->w->cols);
  // GRINQH: each layer reads its own calibrated share of the model-wide target.
  const auto layer_targets = [&](const Matrix& w, int begin, int end) {
    layer_targets_.assign(targets.begin() + begin, targets.begin() + end);
    for (float& t : layer_targets_) t = w.nested->schedule.LayerTarget(t);
    return layer_targets_.data();
  };
  for (int begin = 0; begin < rows;) {
    const bool graded = targets[begin] > 0.f;
    int end = begin + 1;
    while (end < rows && (targets[end] > 0.f) == graded) ++end;
    const float* run_x = x + static_cast<size_t>(begin) * k_in;
    run_outputs_.clear();
    for (const cpu::MatMulOutput& out : outputs) {
      run_outputs_.push_back({out.w, out.y + static_cast<size_t>(begin) * static_cast<size_t>(out.w->rows)});
      if (graded) {
        cpu::GradedMatMul(pool_, run_x, end - begin, *out.w, layer_targets(*out.w, begin, end), run_outputs_.back().y);
      }
    }
    if (!graded) cpu::MatMul(pool_, run_x, end - begin, run_outputs_);
    begin = end;
  }
}

// Causal attention of each new token over its own sequence's cache (grouped-query:
// heads share key/value heads in groups). Stores this step's keys and values first.
void CpuBackend::Attention(int layer, std::span<const ForwardItem> items) {
  const ModelConfig& c = config_;
  const int q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  const int group = c.num_heads / c.num_kv_heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(c.head_dim));

  // (row, its cache) for every token of the batch, so work can split over rows × heads.
  std::vector<CpuKvCache*> row_cache;
  int r = 0;
  for (const ForwardItem& item : items) {
    auto* cache = static_cast<CpuKvCache*>(item.cache);
    for (size_t t = 0; t < item.tokens.size(); ++t, ++r) {
      const size_t pos = static_cast<size_t>(positions_[r]);
      std::memcpy(&cache->keys[layer][pos * kv_dim], &k_[Rows(r, kv_dim)], sizeof(float) * kv_dim);
      std::memcpy(&cache->values[layer][pos * kv_dim], &v_[Rows(r, kv_dim)], sizeof(float) * kv_dim);
      row_cache.push_back(cache);
    }
  }

  const int rows = r;
  pool_.ParallelFor(static_cast<int64_t>(rows) * c.num_heads, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int row = static_cast<int>(task / c.num_heads), h = static_cast<int>(task % c.num_heads);
      const int kv_head = h / group;
      const int length = positions_[row] + 1;  // causal: itself and everything before
      const float* q = &q_[Rows(row, q_dim) + static_cast<size_t>(h * c.head_dim)];
      const std::vector<float>& keys = row_cache[row]->keys[layer];
      const std::vector<float>& values = row_cache[row]->values[layer];
      scores.resize(static_cast<size_t>(length));

      cpu::DotStrided(q, &keys[static_cast<size_t>(kv_head * c.head_dim)], static_cast<size_t>(kv_dim), length,
                      c.head_dim, scores.data());
      float max_score = -std::numeric_limits<float>::infinity();
      for (int p = 0; p < length; ++p) max_score = std::max(max_score, scores[p] *= scale);
      float total = 0.f;
      for (int p = 0; p < length; ++p) total += scores[p] = std::exp(scores[p] - max_score);

      float* out = &attn_[Rows(row, q_dim) + static_cast<size_t>(h * c.head_dim)];
      std::fill(out, out + c.head_dim, 0.f);
      for (int p = 0; p < length; ++p) {
        const float weight = scores[p] / total;
        const float* v = &values[Rows(p, kv_dim) + static_cast<size_t>(kv_head * c.head_dim)];
        for (int d = 0; d < c.head_dim; ++d) out[d] += weight * v[d];
      }
    }
  });
}

}  // namespace grinqh
