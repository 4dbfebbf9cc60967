// The seam between the engine and the hardware that runs the forward pass.
//
// The engine (generation loop, scheduler, evaluation) speaks only this interface; the
// registry (engine/backends/registry.h) makes one by name. A forward call takes a batch of
// sequences, each with the new tokens to append after what its cache already holds: a whole
// prompt (prefill), a chunk of one, or a single token (decode).
//
// What a backend guarantees about batching:
// - cpu: batch-invariant. A row's logits are bit-identical whether it runs alone, batched
//   with any other rows, or its prompt is fed in chunks (every product sums in one fixed
//   order, engine/backends/cpu/cpu_ops.h).
// - a GPU backend (to come): equal within a tolerance it states in its header.
// tests/engine/serving/engine_batch_test.cc checks each registered backend against its own.
//
// Memory: the backend owns the weights it computes with (prepared from ModelWeights, the
// model as stored) and the KV cache, a pool of fixed-size blocks allocated when the backend
// is made. A sequence's cache is a list of blocks taken from the pool as it grows and
// returned when the cache is destroyed; kv_capacity_tokens() is what the pool holds, and
// the scheduler's KV budget never exceeds it, so a step it admits always finds its blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"

namespace grinqh {

// A sequence's key/value cache: blocks of the backend's pool. Owned by the caller, created
// by the backend (NewCache), which it must not outlive; destroying it returns its blocks.
class KvCache {
 public:
  virtual ~KvCache() = default;
  // Positions already cached; the next token goes at this position.
  virtual int length() const = 0;
  // Forgets everything from position `length` on (blocks past it go back to the pool).
  virtual void Truncate(int length) = 0;
};

// Which logits a forward item wants back.
enum class Logits {
  kNone,  // an intermediate prefill chunk: no LM head at all
  kLast,  // the next token after the item's last (decode, a prompt's last chunk)
  kAll,   // one row per new token (evaluation)
};

struct ForwardItem {
  KvCache* cache = nullptr;
  std::span<const int32_t> tokens;  // appended at positions cache->length() onwards
  Logits logits = Logits::kLast;
  // GRINQH: the average bits per weight at which linear layers stored as nested planes read
  // these tokens' input channels, each channel graded by its own activation. 0 reads every
  // stored bit (full depth), as prefill does.
  float target_bits = 0.f;
};

// What one item's tokens read of the linear layers' weights (the embedding row, norms and
// KV cache are not counted): per token, each product counts the stored bytes it needs —
// a dense matrix whole, a layer in planes every plane and parameter at full depth, and a
// graded row the planes of its channels' levels plus the scales and zeros of every group
// it touches (docs/METHOD.md §2.5, honest accounting). Summed over the item's tokens.
struct ForwardStats {
  uint64_t weight_bytes = 0;  // everything above
  uint64_t plane_bytes = 0;   // of which bit planes of graded rows
  uint64_t weights = 0;       // Σ rows × cols over the products
  uint64_t graded_channels = 0;  // Σ input channels graded (grading metadata: one c_k each)
  uint64_t graded_products = 0;  // products with graded rows (a schedule's budgets each)
  // Bits per weight read: weight_bytes × 8 / weights.
  double effective_bits() const { return weights > 0 ? 8.0 * double(weight_bytes) / double(weights) : 0.0; }
  ForwardStats& operator+=(const ForwardStats& o) {
    weight_bytes += o.weight_bytes, plane_bytes += o.plane_bytes, weights += o.weights;
    graded_channels += o.graded_channels, graded_products += o.graded_products;
    return *this;
  }
};

// Called during Forward with the fp32 input rows [rows × cols] of each linear site.
using LinearInputObserver =
    std::function<void(int layer, LinearSite site, const float* x, int rows, int cols)>;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;  // as the registry knows it: "cpu", "cuda"
  // What batching may change (see the top of this file): 0 when a row's logits are
  // bit-identical alone, batched or chunked; otherwise the largest relative L2 difference
  // between a row's logits computed those ways.
  virtual double batch_tolerance() const = 0;
  virtual const ModelConfig& config() const = 0;
  // A new, empty cache. It takes blocks from the pool only as Forward fills it.
  virtual std::unique_ptr<KvCache> NewCache() = 0;
  // Positions the KV pool holds, over all sequences.
  virtual int64_t kv_capacity_tokens() const = 0;
  // Positions the KV pool has not handed out.
  virtual int64_t kv_free_tokens() const = 0;
  // Positions per block: a sequence of n positions holds ceil(n / block) blocks.
  virtual int kv_block_tokens() const = 0;

  // Runs the model over every item's tokens and appends them to the caches. `logits`
  // receives, item after item, vocab_size floats per row the item wants (Logits). `stats`,
  // when given, receives one ForwardStats per item. The whole batch is checked first: a
  // bad item (or a pool too small for the new tokens) fails it with nothing changed.
  virtual absl::Status Forward(std::span<const ForwardItem> items, std::vector<float>& logits,
                               std::vector<ForwardStats>* stats = nullptr) = 0;
};

// Rows of logits an item gets back.
inline int LogitRows(const ForwardItem& item) {
  switch (item.logits) {
    case Logits::kNone: return 0;
    case Logits::kLast: return 1;
    case Logits::kAll: return static_cast<int>(item.tokens.size());
  }
  return 0;
}

}  // namespace grinqh
