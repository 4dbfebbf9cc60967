// Picks the next token from a row of logits: greedy, or temperature / top-k / top-p
// sampling from a seeded generator, so the same seed gives the same output.
#pragma once

#include <cstdint>
#include <random>
#include <span>

#include "absl/status/status.h"

namespace grinqh {

struct SamplingParams {
  float temperature = 0.f;  // 0 = greedy (argmax)
  int top_k = 0;            // keep the k most likely tokens; 0 = all
  float top_p = 1.f;        // keep the smallest set whose probability reaches top_p; 1 = all
  uint64_t seed = 0;

  // INVALID_ARGUMENT naming the field: NaN or negative temperature, negative top_k,
  // top_p outside (0, 1].
  absl::Status Validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  int32_t Sample(std::span<const float> logits);

 private:
  double Uniform();  // in [0, 1), the same sequence on every platform for a seed

  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace grinqh
