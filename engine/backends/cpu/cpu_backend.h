// The CPU backend: the reference forward pass for Llama 3 and Qwen3, fp32 arithmetic
// over weights widened from their stored dtype, multi-threaded over output rows.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backends/backend.h"
#include "engine/backends/cpu/cpu_ops.h"
#include "engine/base/thread_pool.h"
#include "engine/model/weights.h"

namespace grinqh {

class CpuBackend : public Backend {
 public:
  // `weights` must outlive the backend (they view the mapped checkpoint).
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const ModelConfig& config,
                                                            const ModelWeights& weights,
                                                            int num_threads = 0);

  const ModelConfig& config() const override { return config_; }
  std::unique_ptr<KvCache> NewCache() const override;
  // Not thread-safe: one Forward at a time (the scheduler batches instead).
  absl::Status Forward(std::span<const ForwardItem> items, std::vector<float>& logits) override;

  // Watches the input of every linear layer (calibration); empty to stop.
  void SetLinearInputObserver(LinearInputObserver observer) { observer_ = std::move(observer); }
  // Calibration of layer l needs nothing after it: Forward runs only the first `layers`
  // decoder layers and returns no logits. Any value >= num_layers runs the whole model.
  void SetLayerLimit(int layers) { layer_limit_ = layers; }

 private:
  CpuBackend(const ModelConfig& config, const ModelWeights& weights, int num_threads);
  void Attention(int layer, std::span<const ForwardItem> items);
  // The products of one input with one or more weight matrices: dense, or graded for
  // rows with a target when the weights are nested. `head`: the rows are the LM head's.
  void Linear(const float* x, int rows, std::initializer_list<cpu::MatMulOutput> outputs, bool head = false);
  void Observe(int layer, LinearSite site, const std::vector<float>& x, int rows, int cols) const {
    if (observer_) observer_(layer, site, x.data(), rows, cols);
  }

  const ModelConfig config_;
  const ModelWeights& weights_;
  const std::vector<float> inv_freq_;
  ThreadPool pool_;
  LinearInputObserver observer_;
  int layer_limit_ = 1 << 30;

  // Scratch, one row per token of the batch; reused across calls.
  std::vector<int> positions_;
  std::vector<float> row_targets_, head_targets_;  // per row: GRINQH target bits, 0 = full depth
  std::vector<cpu::MatMulOutput> run_outputs_;   // Linear: one run of alike rows
  std::vector<float> layer_targets_;               // some of them, mapped by a layer's schedule
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_;
};

}  // namespace grinqh
