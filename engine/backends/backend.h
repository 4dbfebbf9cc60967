// The seam between the engine and the hardware that runs the forward pass.
//
// The engine (generation loop, scheduler) speaks only this interface; the CPU backend
// implements it here, the CUDA backend in kernels/. A forward call takes a batch of
// sequences, each with the new tokens to append after what its cache already holds:
// a whole prompt (prefill), a chunk of one, or a single token (decode).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"

namespace grinqh {

// A sequence's key/value cache. Owned by the caller, created by the backend.
class KvCache {
 public:
  virtual ~KvCache() = default;
  // Positions already cached; the next token goes at this position.
  virtual int length() const = 0;
  // Forgets everything from position `length` on.
  virtual void Truncate(int length) = 0;
};

struct ForwardItem {
  KvCache* cache = nullptr;
  std::span<const int32_t> tokens;  // appended at positions cache->length() onwards
  bool all_logits = false;          // logits for every new token, or only the last
  // GRINQH: the average bits per weight at which linear layers with nested weights read
  // these tokens' input channels, each channel graded by its own activation. 0 reads every
  // stored bit (full depth), as prefill does.
  float target_bits = 0.f;
};

// Called during Forward with the fp32 input rows [rows × cols] of each linear site.
using LinearInputObserver =
    std::function<void(int layer, LinearSite site, const float* x, int rows, int cols)>;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelConfig& config() const = 0;
  virtual std::unique_ptr<KvCache> NewCache() const = 0;

  // Runs the model over every item's tokens and appends them to the caches.
  // `logits` receives, item after item, one row of vocab_size floats per token
  // (all_logits) or for the last token only.
  virtual absl::Status Forward(std::span<const ForwardItem> items, std::vector<float>& logits) = 0;
};

}  // namespace grinqh
