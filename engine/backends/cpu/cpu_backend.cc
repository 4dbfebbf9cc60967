#include "engine/backends/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/backends/cpu/cpu_ops.h"

namespace grinqh {
namespace {

size_t Rows(int rows, int width) { return static_cast<size_t>(rows) * static_cast<size_t>(width); }

}  // namespace

// A sequence's cache: its blocks of the pool, in position order.
class CpuBackend::Cache : public KvCache {
 public:
  explicit Cache(KvBlockPool& pool) : pool_(pool) {}
  ~Cache() override { pool_.Return(blocks, 0); }
  int length() const override { return length_; }
  void Truncate(int length) override {
    length_ = std::min(length_, std::max(0, length));
    pool_.Return(blocks, pool_.BlocksFor(length_));
  }

  std::vector<int> blocks;
  int length_ = 0;

 private:
  KvBlockPool& pool_;
};

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const ModelConfig& config, const ModelWeights& weights,
                                                               int num_threads, int64_t kv_cache_tokens) {
  if (config.head_dim > 1024 || config.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("head_dim ", config.head_dim,
                                                   " is not supported (even, at most 1024)"));
  }
  if (kv_cache_tokens < 0) return absl::InvalidArgumentError("kv_cache_tokens must not be negative");
  return std::unique_ptr<CpuBackend>(new CpuBackend(config, weights, num_threads, kv_cache_tokens));
}

CpuBackend::CpuBackend(const ModelConfig& config, const ModelWeights& weights, int num_threads,
                       int64_t kv_cache_tokens)
    : config_(config),
      weights_(weights),
      inv_freq_(RopeInverseFrequencies(config)),
      pool_(num_threads),
      kv_pool_(kv_cache_tokens > 0 ? kv_cache_tokens : kDefaultKvCacheTokens, kKvBlockTokens) {
  for (const LayerWeights& l : weights.layers) {
    layers_.push_back({Prepare(l.wq), Prepare(l.wk), Prepare(l.wv), Prepare(l.wo), Prepare(l.w_gate), Prepare(l.w_up),
                       Prepare(l.w_down)});
  }
  lm_head_ = Prepare(weights.lm_head);
  // Not value-initialized: the pages are touched only as positions are written.
  kv_block_floats_ = Rows(kv_pool_.block_tokens(), config.num_kv_heads * config.head_dim);
  kv_storage_.reset(new float[static_cast<size_t>(kv_pool_.num_blocks()) * static_cast<size_t>(config.num_layers) * 2 *
                              kv_block_floats_]);
}

CpuBackend::~CpuBackend() = default;

CpuBackend::Linear CpuBackend::Prepare(const LinearWeights& w) {
  if (const Matrix* m = w.dense()) return {m, nullptr, uint64_t(m->rows) * m->row_bytes()};
  const PlaneWeights& p = *w.planes();
  const BitPlaneShape& shape = p.planes.shape;
  full_depth_.push_back(w.ToFloat());
  widened_.push_back(FloatMatrix(full_depth_.back(), shape.rows, shape.cols));
  return {&widened_.back(), p.graded() ? &p : nullptr, shape.planes_size() + shape.params_size() * kGroupParamBytes};
}

float* CpuBackend::KeyBlock(int block, int layer) const {
  return kv_storage_.get() + (static_cast<size_t>(layer) * static_cast<size_t>(kv_pool_.num_blocks()) +
                              static_cast<size_t>(block)) * 2 * kv_block_floats_;
}

float* CpuBackend::ValueBlock(int block, int layer) const { return KeyBlock(block, layer) + kv_block_floats_; }

std::unique_ptr<KvCache> CpuBackend::NewCache() { return std::make_unique<Cache>(kv_pool_); }

absl::Status CpuBackend::Forward(std::span<const ForwardItem> items, std::vector<float>& logits,
                                 std::vector<ForwardStats>* stats) {
  const ModelConfig& c = config_;
  const int hidden = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  const float eps = static_cast<float>(c.rms_norm_eps);

  // Validate the whole batch before touching any cache, so a bad item changes nothing.
  int rows = 0, logit_rows = 0, blocks_needed = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const ForwardItem& item = items[i];
    if (item.cache == nullptr || item.tokens.empty()) return absl::InvalidArgumentError("empty forward item");
    for (size_t j = 0; j < i; ++j) {
      if (items[j].cache == item.cache) return absl::InvalidArgumentError("a cache appears twice in one batch");
    }
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
    const auto* cache = static_cast<const Cache*>(item.cache);
    if (cache->length() + n > c.max_position_embeddings) {
      return absl::OutOfRangeError(absl::StrCat("sequence of ", cache->length() + n,
                                                " tokens exceeds the context length ", c.max_position_embeddings));
    }
    blocks_needed += kv_pool_.BlocksFor(cache->length() + n) - static_cast<int>(cache->blocks.size());
    rows += n;
    logit_rows += LogitRows(item);
  }
  if (int64_t{blocks_needed} * kv_pool_.block_tokens() > kv_pool_.free_tokens()) {
    return absl::ResourceExhaustedError(absl::StrCat("the KV pool has ", kv_pool_.free_tokens(), " of ",
                                                     kv_pool_.capacity_tokens(), " positions free; this step needs ",
                                                     int64_t{blocks_needed} * kv_pool_.block_tokens()));
  }

  positions_.clear();
  row_cache_.clear();
  row_targets_.clear();
  head_targets_.clear();
  // Reads are counted only when asked for (evaluation), off the serving path.
  row_stats_.assign(stats != nullptr ? static_cast<size_t>(rows) : 0, {});
  head_stats_.assign(stats != nullptr ? static_cast<size_t>(logit_rows) : 0, {});
  x_.resize(Rows(rows, hidden));
  xn_.resize(Rows(rows, hidden));
  q_.resize(Rows(rows, q_dim));
  k_.resize(Rows(rows, kv_dim));
  v_.resize(Rows(rows, kv_dim));
  attn_.resize(Rows(rows, q_dim));
  gate_.resize(Rows(rows, c.intermediate_size));
  up_.resize(Rows(rows, c.intermediate_size));

  // Embed every token, note its position in its sequence, and take the blocks it needs.
  int r = 0;
  for (const ForwardItem& item : items) {
    auto* cache = static_cast<Cache*>(item.cache);
    const int n = static_cast<int>(item.tokens.size());
    if (!kv_pool_.Take(cache->blocks, kv_pool_.BlocksFor(cache->length() + n) - static_cast<int>(cache->blocks.size()))) {
      return absl::InternalError("the KV pool shrank during a step");  // checked above; only Forward takes blocks
    }
    for (int t = 0; t < n; ++t, ++r) {
      positions_.push_back(cache->length() + t);
      row_cache_.push_back(cache);
      row_targets_.push_back(item.target_bits);
      const bool head = item.logits == Logits::kAll || (item.logits == Logits::kLast && t + 1 == n);
      if (head) head_targets_.push_back(item.target_bits);
      WidenToFloat(weights_.embed.dtype, weights_.embed.row(item.tokens[static_cast<size_t>(t)]),
                   &x_[Rows(r, hidden)], static_cast<size_t>(hidden));
    }
  }

  const int layers = std::min(c.num_layers, layer_limit_);
  for (int l = 0; l < layers; ++l) {
    const LayerWeights& norms = weights_.layers[l];
    const Layer& w = layers_[l];

    // Attention block: x += o_proj(attention(rope(q), rope(k), v)) over the normed input.
    for (int i = 0; i < rows; ++i) cpu::RmsNorm(&x_[Rows(i, hidden)], norms.attn_norm.data(), &xn_[Rows(i, hidden)], hidden, eps);
    Observe(l, LinearSite::kAttentionInput, xn_, rows, hidden);
    Products(xn_.data(), rows, {{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}});
    for (int i = 0; i < rows; ++i) {
      float* q = &q_[Rows(i, q_dim)];
      float* k = &k_[Rows(i, kv_dim)];
      if (c.qk_norm) {  // Qwen3 normalizes each head of q and k before the rotation
        for (int h = 0; h < c.num_heads; ++h) cpu::RmsNorm(q + h * c.head_dim, norms.q_norm.data(), q + h * c.head_dim, c.head_dim, eps);
        for (int h = 0; h < c.num_kv_heads; ++h) cpu::RmsNorm(k + h * c.head_dim, norms.k_norm.data(), k + h * c.head_dim, c.head_dim, eps);
      }
      cpu::ApplyRope(q, c.num_heads, c.head_dim, positions_[i], inv_freq_.data());
      cpu::ApplyRope(k, c.num_kv_heads, c.head_dim, positions_[i], inv_freq_.data());
    }
    Attention(l);
    Observe(l, LinearSite::kAttentionOutput, attn_, rows, q_dim);
    Products(attn_.data(), rows, {{&w.wo, xn_.data()}});
    for (size_t i = 0; i < Rows(rows, hidden); ++i) x_[i] += xn_[i];

    // MLP block: x += down(silu(gate(x)) * up(x)) over the normed input.
    for (int i = 0; i < rows; ++i) cpu::RmsNorm(&x_[Rows(i, hidden)], norms.mlp_norm.data(), &xn_[Rows(i, hidden)], hidden, eps);
    Observe(l, LinearSite::kMlpInput, xn_, rows, hidden);
    Products(xn_.data(), rows, {{&w.w_gate, gate_.data()}, {&w.w_up, up_.data()}});
    cpu::SiluMul(gate_.data(), up_.data(), gate_.data(), rows * c.intermediate_size);
    Observe(l, LinearSite::kMlpOutput, gate_, rows, c.intermediate_size);
    Products(gate_.data(), rows, {{&w.w_down, xn_.data()}});
    for (size_t i = 0; i < Rows(rows, hidden); ++i) x_[i] += xn_[i];
  }

  for (const ForwardItem& item : items) static_cast<Cache*>(item.cache)->length_ += static_cast<int>(item.tokens.size());
  logits.clear();
  if (layers == c.num_layers && logit_rows > 0) {  // (calibration may stop early: no logits)
    // Final norm and LM head, only on the rows whose logits were asked for.
    int out = 0;
    r = 0;
    for (const ForwardItem& item : items) {
      const int n = static_cast<int>(item.tokens.size());
      for (int t = n - LogitRows(item); t < n; ++t, ++out) {
        cpu::RmsNorm(&x_[Rows(r + t, hidden)], weights_.final_norm.data(), &xn_[Rows(out, hidden)], hidden, eps);
      }
      r += n;
    }
    Observe(c.num_layers, LinearSite::kLmHead, xn_, logit_rows, hidden);
    logits.resize(Rows(logit_rows, c.vocab_size));
    Products(xn_.data(), logit_rows, {{&lm_head_, logits.data()}}, /*head=*/true);
  }

  if (stats != nullptr) {  // rows' reads, summed per item
    stats->assign(items.size(), {});
    r = 0;
    int head_row = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t t = 0; t < items[i].tokens.size(); ++t) (*stats)[i] += row_stats_[static_cast<size_t>(r++)];
      if (layers < c.num_layers) continue;
      for (int t = 0; t < LogitRows(items[i]); ++t) (*stats)[i] += head_stats_[static_cast<size_t>(head_row++)];
    }
  }
  return absl::OkStatus();
}

void CpuBackend::Products(const float* x, int rows, std::initializer_list<Output> outputs, bool head) {
  const std::vector<float>& targets = head ? head_targets_ : row_targets_;
  std::vector<ForwardStats>& stats = head ? head_stats_ : row_stats_;  // empty: not counting
  // Graded rows read the planes, the others the full-depth weights, each row by its own
  // target whatever shares the batch. Runs of alike rows go together (the scheduler puts
  // decodes first, so a mixed batch is usually two runs).
  const size_t k_in = static_cast<size_t>(outputs.begin()->w->full_depth->cols);
  const bool gradable = outputs.begin()->w->graded != nullptr;
  for (int begin = 0; begin < rows;) {
    const bool graded = gradable && targets[begin] > 0.f;
    int end = begin + 1;
    while (end < rows && (gradable && targets[end] > 0.f) == graded) ++end;
    const float* run_x = x + static_cast<size_t>(begin) * k_in;
    run_outputs_.clear();
    for (const Output& out : outputs) {
      float* y = out.y + static_cast<size_t>(begin) * static_cast<size_t>(out.w->full_depth->rows);
      if (graded) {
        // GRINQH: each layer reads its own calibrated share of the model-wide target.
        const PlaneWeights& p = *out.w->graded;
        layer_targets_.assign(targets.begin() + begin, targets.begin() + end);
        for (float& t : layer_targets_) t = p.schedule.LayerTarget(t);
        cpu::GradedMatMul(pool_, run_x, end - begin, p, layer_targets_.data(), y, grader_,
                          stats.empty() ? nullptr : &stats[static_cast<size_t>(begin)]);
      } else {
        run_outputs_.push_back({out.w->full_depth, y});
        const uint64_t weights = uint64_t(out.w->full_depth->rows) * k_in;
        for (size_t i = static_cast<size_t>(begin); i < static_cast<size_t>(end) && !stats.empty(); ++i) {
          stats[i].weight_bytes += out.w->stored_bytes;
          stats[i].weights += weights;
        }
      }
    }
    if (!graded) cpu::MatMul(pool_, run_x, end - begin, run_outputs_);
    begin = end;
  }
}

// Causal attention of each new token over its own sequence's cache (grouped-query:
// heads share key/value heads in groups). Stores this step's keys and values first.
void CpuBackend::Attention(int layer) {
  const ModelConfig& c = config_;
  const int q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  const int group = c.num_heads / c.num_kv_heads;
  const int block_tokens = kv_pool_.block_tokens();
  const float scale = 1.f / std::sqrt(static_cast<float>(c.head_dim));

  const int rows = static_cast<int>(positions_.size());
  for (int r = 0; r < rows; ++r) {
    const int pos = positions_[r];
    const int block = row_cache_[r]->blocks[static_cast<size_t>(pos / block_tokens)];
    const size_t offset = Rows(pos % block_tokens, kv_dim);
    std::memcpy(KeyBlock(block, layer) + offset, &k_[Rows(r, kv_dim)], sizeof(float) * kv_dim);
    std::memcpy(ValueBlock(block, layer) + offset, &v_[Rows(r, kv_dim)], sizeof(float) * kv_dim);
  }

  pool_.ParallelFor(static_cast<int64_t>(rows) * c.num_heads, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int row = static_cast<int>(task / c.num_heads), h = static_cast<int>(task % c.num_heads);
      const size_t head_offset = static_cast<size_t>((h / group) * c.head_dim);
      const int length = positions_[row] + 1;  // causal: itself and everything before
      const float* q = &q_[Rows(row, q_dim) + static_cast<size_t>(h * c.head_dim)];
      const std::vector<int>& blocks = row_cache_[row]->blocks;
      scores.resize(static_cast<size_t>(length));

      for (int p0 = 0; p0 < length; p0 += block_tokens) {  // a block's run of positions at a time
        const float* keys = KeyBlock(blocks[static_cast<size_t>(p0 / block_tokens)], layer) + head_offset;
        cpu::DotStrided(q, keys, static_cast<size_t>(kv_dim), std::min(block_tokens, length - p0), c.head_dim,
                        &scores[static_cast<size_t>(p0)]);
      }
      float max_score = -std::numeric_limits<float>::infinity();
      for (int p = 0; p < length; ++p) max_score = std::max(max_score, scores[p] *= scale);
      float total = 0.f;
      for (int p = 0; p < length; ++p) total += scores[p] = std::exp(scores[p] - max_score);

      float* out = &attn_[Rows(row, q_dim) + static_cast<size_t>(h * c.head_dim)];
      std::fill(out, out + c.head_dim, 0.f);
      for (int p0 = 0; p0 < length; p0 += block_tokens) {
        const float* values = ValueBlock(blocks[static_cast<size_t>(p0 / block_tokens)], layer) + head_offset;
        for (int p = p0; p < std::min(length, p0 + block_tokens); ++p) {
          const float weight = scores[p] / total;
          const float* v = values + Rows(p - p0, kv_dim);
          for (int d = 0; d < c.head_dim; ++d) out[d] += weight * v[d];
        }
      }
    }
  });
}

}  // namespace grinqh
