// Picks the next token from a row of logits: greedy, or temperature / top-k / top-p /
// min-p sampling from a seeded generator, so the same seed gives the same output.
//
// The order is vLLM's (v1 sampler) and Hugging Face's: logit_bias, then the penalties
// (repetition, then frequency and presence) on the logits (ProcessLogits), then temperature,
// then top-k, top-p and min-p on what is left (Sampler::Sample).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace grinqh {

struct SamplingParams {
  float temperature = 0.f;  // 0 = greedy (argmax)
  int top_k = 0;            // keep the k most likely tokens; 0 = all
  float top_p = 1.f;        // keep the smallest set whose probability reaches top_p; 1 = all
  uint64_t seed = 0;
  float min_p = 0.f;  // drop tokens less likely than min_p times the most likely; 0 = off
  // Hugging Face's / vLLM's: the logit of a token already in the prompt or the output is
  // divided by the penalty when positive, multiplied when negative. 1 = off.
  float repetition_penalty = 1.f;
  // OpenAI's, over generated tokens only: logit -= frequency * count + presence * (count > 0).
  float presence_penalty = 0.f;
  float frequency_penalty = 0.f;
  std::vector<std::pair<int32_t, float>> logit_bias = {};  // token id, added to its logit

  // INVALID_ARGUMENT naming the field: NaN or negative temperature, negative top_k,
  // top_p outside (0, 1], min_p outside [0, 1], repetition_penalty not > 0, presence or
  // frequency penalty outside [-2, 2], a bias outside [-100, 100]. Ids against the
  // vocabulary: ValidateRequest.
  absl::Status Validate() const;
  // Whether ProcessLogits changes anything.
  bool ProcessesLogits() const;
};

// Applies logit_bias and the penalties to `logits` in place. `prompt` and `output` are the
// request's prompt and generated ids so far.
void ProcessLogits(const SamplingParams& params, std::span<const int32_t> prompt, std::span<const int32_t> output,
                   std::span<float> logits);

// A generated token's log-probability and the most likely alternatives', from
// log_softmax of the logits after logit_bias, the penalties and min_tokens' masking, before temperature and
// truncation (top-k/top-p/min-p): what the model, steered by the request, thinks of each
// token, whatever the sampler then keeps. (vLLM's default reports the raw model's; this
// differs from it only when a penalty or bias is set, and then shows their effect.)
struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top = {};  // most likely first (ties by id); N <= kMaxTopLogprobs
};
inline constexpr int kMaxTopLogprobs = 20;
TokenLogprobs ComputeLogprobs(std::span<const float> logits, int32_t token, int top_n);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  int32_t Sample(std::span<const float> logits);
  // What Sample draws from: (token, probability) for the tokens temperature, top-k, top-p
  // and min-p keep, most likely first; greedy gives the argmax alone.
  std::vector<std::pair<int32_t, double>> Distribution(std::span<const float> logits) const;

 private:
  struct Candidates {
    std::vector<int32_t> ids;      // most likely first
    std::vector<double> weights;   // exp((logit - max) / temperature)
    double total = 0;              // the weights' sum
  };
  Candidates Truncate(std::span<const float> logits) const;

  double Uniform();  // in [0, 1), the same sequence on every platform for a seed

  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace grinqh
