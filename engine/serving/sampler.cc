#include "engine/serving/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"

namespace grinqh {

absl::Status SamplingParams::Validate() const {
  if (std::isnan(temperature) || temperature < 0.f || std::isinf(temperature)) {
    return absl::InvalidArgumentError(absl::StrCat("temperature must be a finite number >= 0, got ", temperature));
  }
  if (top_k < 0) return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", top_k));
  if (!(top_p > 0.f && top_p <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", top_p));
  }
  return absl::OkStatus();
}

double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1p-53; }

int32_t Sampler::Sample(std::span<const float> logits) {
  const auto argmax = [&] {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
  if (params_.temperature == 0.f) return argmax();

  // Candidates sorted by logit, most likely first (ties by id, for determinism).
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto more_likely = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  size_t keep = ids.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(), more_likely);
  } else {
    std::sort(ids.begin(), ids.end(), more_likely);
  }
  ids.resize(keep);

  // Softmax at the temperature, in double for a stable cumulative sum.
  std::vector<double> probs(keep);
  const double max_logit = logits[ids[0]];
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    total += probs[i] = std::exp((logits[ids[i]] - max_logit) / params_.temperature);
  }
  // Nucleus: the smallest prefix whose mass reaches top_p (always at least one token).
  if (params_.top_p < 1.f) {
    double mass = 0;
    size_t n = 0;
    while (n < keep && mass < params_.top_p * total) mass += probs[n++];
    keep = std::max<size_t>(n, 1);
    total = mass > 0 ? mass : probs[0];
  }

  const double u = Uniform() * total;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace grinqh
