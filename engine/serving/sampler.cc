#include "engine/serving/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"

namespace grinqh {

namespace {

int32_t Argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// The n most likely token ids, most likely first (ties by id, for determinism).
std::vector<int32_t> MostLikelyFirst(std::span<const float> logits, size_t n) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto more_likely = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  if (n < ids.size()) {
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(), more_likely);
    ids.resize(n);
  } else {
    std::sort(ids.begin(), ids.end(), more_likely);
  }
  return ids;
}

}  // namespace

absl::Status SamplingParams::Validate() const {
  if (std::isnan(temperature) || temperature < 0.f || std::isinf(temperature)) {
    return absl::InvalidArgumentError(absl::StrCat("temperature must be a finite number >= 0, got ", temperature));
  }
  if (top_k < 0) return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", top_k));
  if (!(top_p > 0.f && top_p <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", top_p));
  }
  if (!(min_p >= 0.f && min_p <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("min_p must be in [0, 1], got ", min_p));
  }
  if (!(repetition_penalty > 0.f) || std::isinf(repetition_penalty)) {
    return absl::InvalidArgumentError(absl::StrCat("repetition_penalty must be a finite number > 0, got ", repetition_penalty));
  }
  if (!(presence_penalty >= -2.f && presence_penalty <= 2.f)) {
    return absl::InvalidArgumentError(absl::StrCat("presence_penalty must be in [-2, 2], got ", presence_penalty));
  }
  if (!(frequency_penalty >= -2.f && frequency_penalty <= 2.f)) {
    return absl::InvalidArgumentError(absl::StrCat("frequency_penalty must be in [-2, 2], got ", frequency_penalty));
  }
  for (const auto& [id, bias] : logit_bias) {
    if (!(bias >= -100.f && bias <= 100.f)) {
      return absl::InvalidArgumentError(absl::StrCat("logit_bias: the bias of token ", id, " must be in [-100, 100], got ", bias));
    }
  }
  return absl::OkStatus();
}

bool SamplingParams::ProcessesLogits() const {
  return !logit_bias.empty() || repetition_penalty != 1.f || presence_penalty != 0.f || frequency_penalty != 0.f;
}

void ProcessLogits(const SamplingParams& params, std::span<const int32_t> prompt, std::span<const int32_t> output,
                   std::span<float> logits) {
  for (const auto& [id, bias] : params.logit_bias) logits[static_cast<size_t>(id)] += bias;
  if (params.repetition_penalty != 1.f) {
    std::vector<bool> seen(logits.size());
    for (int32_t id : prompt) seen[static_cast<size_t>(id)] = true;
    for (int32_t id : output) seen[static_cast<size_t>(id)] = true;
    for (size_t id = 0; id < logits.size(); ++id) {
      if (!seen[id]) continue;
      logits[id] = logits[id] > 0 ? logits[id] / params.repetition_penalty : logits[id] * params.repetition_penalty;
    }
  }
  if (params.presence_penalty != 0.f || params.frequency_penalty != 0.f) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t id : output) ++counts[id];
    for (const auto& [id, count] : counts) {
      logits[static_cast<size_t>(id)] -= params.frequency_penalty * static_cast<float>(count) + params.presence_penalty;
    }
  }
}

TokenLogprobs ComputeLogprobs(std::span<const float> logits, int32_t token, int top_n) {
  // log_softmax in double: x - max - log(sum(exp(x - max))).
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(x - max_logit);
  const double log_norm = max_logit + std::log(sum);
  const auto logprob = [&](int32_t id) { return static_cast<float>(logits[static_cast<size_t>(id)] - log_norm); };

  TokenLogprobs out{.token = token, .logprob = logprob(token), .top = {}};
  for (int32_t id : MostLikelyFirst(logits, static_cast<size_t>(std::max(top_n, 0)))) {
    out.top.emplace_back(id, logprob(id));
  }
  return out;
}

double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1p-53; }

// Needs temperature > 0.
Sampler::Candidates Sampler::Truncate(std::span<const float> logits) const {
  Candidates c;
  c.ids = MostLikelyFirst(logits, params_.top_k > 0 ? static_cast<size_t>(params_.top_k) : logits.size());
  size_t keep = c.ids.size();

  // Softmax at the temperature, in double for a stable cumulative sum.
  c.weights.resize(keep);
  const double max_logit = logits[c.ids[0]];
  for (size_t i = 0; i < keep; ++i) c.weights[i] = std::exp((logits[c.ids[i]] - max_logit) / params_.temperature);
  c.total = std::accumulate(c.weights.begin(), c.weights.end(), 0.0);
  // Nucleus: the smallest prefix whose mass reaches top_p (always at least one token).
  if (params_.top_p < 1.f) {
    double mass = 0;
    size_t n = 0;
    while (n < keep && mass < params_.top_p * c.total) mass += c.weights[n++];
    keep = std::max<size_t>(n, 1);
    c.total = mass > 0 ? mass : c.weights[0];
  }
  // min-p after top-k/top-p, as vLLM: weights[0] is the most likely token's, and the
  // candidates are sorted, so the tokens kept are a prefix.
  if (params_.min_p > 0.f) {
    size_t n = 1;
    while (n < keep && c.weights[n] >= params_.min_p * c.weights[0]) ++n;
    if (n < keep) c.total = std::accumulate(c.weights.begin(), c.weights.begin() + static_cast<std::ptrdiff_t>(n), 0.0);
    keep = n;
  }
  c.ids.resize(keep);
  c.weights.resize(keep);
  return c;
}

std::vector<std::pair<int32_t, double>> Sampler::Distribution(std::span<const float> logits) const {
  if (params_.temperature == 0.f) return {{Argmax(logits), 1.0}};
  const Candidates c = Truncate(logits);
  std::vector<std::pair<int32_t, double>> out;
  for (size_t i = 0; i < c.ids.size(); ++i) out.emplace_back(c.ids[i], c.weights[i] / c.total);
  return out;
}

int32_t Sampler::Sample(std::span<const float> logits) {
  if (params_.temperature == 0.f) return Argmax(logits);
  const Candidates c = Truncate(logits);
  const double u = Uniform() * c.total;
  double cumulative = 0;
  for (size_t i = 0; i < c.ids.size(); ++i) {
    cumulative += c.weights[i];
    if (u < cumulative) return c.ids[i];
  }
  return c.ids.back();
}

}  // namespace grinqh
