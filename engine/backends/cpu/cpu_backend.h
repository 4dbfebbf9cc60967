// The CPU backend: the reference forward pass for Llama 3 and Qwen3, fp32 arithmetic
// over weights widened from their stored dtype, multi-threaded over output rows.
//
// What it prepares from the model as stored: dense layers are read in place (widened on
// the fly; a tool that swaps a dense layer's Matrix for another is seen at the next
// Forward); a layer in bit planes is widened once to fp32 at full depth for ungraded rows
// (prefill, and every row of a fixed-width baseline), while graded rows read its planes.
// The KV pool is host memory in blocks (engine/backends/kv_blocks.h), reserved up front
// and touched only as it fills.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backends/backend.h"
#include "engine/backends/cpu/cpu_ops.h"
#include "engine/backends/kv_blocks.h"
#include "engine/base/thread_pool.h"
#include "engine/model/weights.h"

namespace grinqh {

class CpuBackend : public Backend {
 public:
  // `weights` must outlive the backend (they view the mapped checkpoint). kv_cache_tokens:
  // positions the KV pool holds (0: kDefaultKvCacheTokens).
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const ModelConfig& config, const ModelWeights& weights,
                                                            int num_threads = 0, int64_t kv_cache_tokens = 0);
  ~CpuBackend() override;

  std::string_view name() const override { return "cpu"; }
  double batch_tolerance() const override { return 0; }  // batch-invariant (cpu_ops.h)
  const ModelConfig& config() const override { return config_; }
  std::unique_ptr<KvCache> NewCache() override;
  int64_t kv_capacity_tokens() const override { return kv_pool_.capacity_tokens(); }
  int64_t kv_free_tokens() const override { return kv_pool_.free_tokens(); }
  int kv_block_tokens() const override { return kv_pool_.block_tokens(); }
  // Not thread-safe: one Forward at a time (the scheduler batches instead).
  absl::Status Forward(std::span<const ForwardItem> items, std::vector<float>& logits,
                       std::vector<ForwardStats>* stats = nullptr) override;

  // Offline tools (calibration, evaluation) only:
  // Watches the input of every linear layer; empty to stop.
  void SetLinearInputObserver(LinearInputObserver observer) { observer_ = std::move(observer); }
  // Calibration of layer l needs nothing after it: Forward runs only the first `layers`
  // decoder layers and returns no logits. Any value >= num_layers runs the whole model.
  void SetLayerLimit(int layers) { layer_limit_ = layers; }
  // Grades rows by another rule than GradeRow (research variants in `grinqh eval`).
  void SetRowGrader(cpu::RowGrader grader) { grader_ = std::move(grader); }

 private:
  class Cache;
  // A linear layer as this backend computes with it.
  struct Linear {
    const Matrix* full_depth = nullptr;    // what ungraded rows multiply by
    const PlaneWeights* graded = nullptr;  // GRINQH planes that graded rows read; null: never graded
    uint64_t stored_bytes = 0;             // what a full-depth product needs, as stored
  };
  struct Layer {
    Linear wq, wk, wv, wo, w_gate, w_up, w_down;
  };
  struct Output {  // one product of a Linear call
    const Linear* w;
    float* y;
  };

  CpuBackend(const ModelConfig& config, const ModelWeights& weights, int num_threads, int64_t kv_cache_tokens);
  Linear Prepare(const LinearWeights& w);
  // The KV cache of one layer, as (keys, values) base pointers of a block.
  float* KeyBlock(int block, int layer) const;
  float* ValueBlock(int block, int layer) const;
  void Attention(int layer);
  // The products of one input with one or more layers: full depth, or graded for rows with
  // a target when the layer has GRINQH planes. `head`: the rows are the LM head's.
  void Products(const float* x, int rows, std::initializer_list<Output> outputs, bool head = false);
  void Observe(int layer, LinearSite site, const std::vector<float>& x, int rows, int cols) const {
    if (observer_) observer_(layer, site, x.data(), rows, cols);
  }

  const ModelConfig config_;
  const ModelWeights& weights_;
  std::vector<std::vector<float>> full_depth_;  // fp32 weights widened from planes
  std::deque<Matrix> widened_;                  // and their matrices (stable addresses)
  std::vector<Layer> layers_;
  Linear lm_head_;
  const std::vector<float> inv_freq_;
  ThreadPool pool_;
  LinearInputObserver observer_;
  cpu::RowGrader grader_;
  int layer_limit_ = 1 << 30;

  // The KV pool: kv_pool_ hands out block ids; block b of layer l holds the keys, then the
  // values, of kv_block_tokens() positions: [layer][block][k|v][position][kv_dim] floats, so
  // a sequence's blocks (taken in order from a fresh pool) lie one after another per layer.
  KvBlockPool kv_pool_;
  size_t kv_block_floats_ = 0;  // one layer's keys (or values) in a block
  std::unique_ptr<float[]> kv_storage_;

  // Scratch, one row per token of the batch; reused across calls.
  std::vector<int> positions_;
  std::vector<Cache*> row_cache_;
  std::vector<float> row_targets_, head_targets_;  // per row: GRINQH target bits, 0 = full depth
  std::vector<ForwardStats> row_stats_, head_stats_;
  std::vector<cpu::MatMulOutput> run_outputs_;     // Products: one run of alike rows
  std::vector<float> layer_targets_;               // some of them, mapped by a layer's schedule
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_;
};

}  // namespace grinqh
