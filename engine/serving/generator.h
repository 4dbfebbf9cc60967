// The generation loop for one request: prefill the prompt, then decode token by token,
// streaming text as it completes, until EOS, a stop string or the token limit.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/serving/model.h"
#include "engine/serving/sampler.h"

namespace grinqh {

enum class FinishReason { kLength, kStop, kEos, kCancelled };
// "length", "stop", "eos", "cancelled"
std::string_view FinishReasonName(FinishReason reason);

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;
  int max_tokens = 128;
  SamplingParams sampling;
  // Generation ends when the text contains one of these; the stop string itself and
  // anything after it are not returned. Needs the model's tokenizer.
  std::vector<std::string> stop;
  bool stop_at_eos = true;
  // More tokens that end generation like EOS (e.g. a chat template's end-of-turn token).
  std::vector<int32_t> stop_token_ids;
  // EOS and the stop tokens are masked until this many tokens are generated (vLLM's).
  int min_tokens = 0;
  // Report each generated token's log-probability, and its top_logprobs most likely
  // alternatives ([0, kMaxTopLogprobs]); see TokenLogprobs for which distribution.
  bool logprobs = false;
  int top_logprobs = 0;
  // GRINQH: average bits per weight each decode step reads (prefill reads the full stored
  // depth). 0 decodes at full depth; otherwise (0, model.max_decode_bits()].
  float decode_bits = 0.f;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids; an ending EOS is not included
  std::vector<TokenLogprobs> logprobs;  // one per token, when the request asks
  std::string text;             // empty when the model has no tokenizer
  FinishReason finish_reason = FinishReason::kLength;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Called for each generated token with the text it completes (often empty: bytes of a
// split character, or text that may be the start of a stop string, are held back).
// A last call with token -1 releases what was still held when generation ended.
using TokenCallback = std::function<void(int32_t token, std::string_view text)>;
// (Logprobs: GenerationResult::logprobs.)

absl::StatusOr<GenerationResult> Generate(Model& model, const GenerationRequest& request,
                                          const TokenCallback& on_token = {});

// The checks every way of running a request makes first (Generate, the scheduler's
// Submit): INVALID_ARGUMENT naming the field.
absl::Status ValidateRequest(const Model& model, const GenerationRequest& request);

// The tokens a request may generate: max_tokens, clipped to what the context leaves.
int MaxNewTokens(const ModelConfig& config, const GenerationRequest& request);

// Holds back streamed text that could be the start of a stop string.
class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends text; returns what can be released now. Sets stopped() when a stop string
  // appears, in which case the text before it is released and the rest dropped.
  std::string Push(std::string_view text);
  // Releases what is held back (the stream ended without a stop string).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

// What one request does with each row of logits once its prompt is read: samples the
// next token, turns it into text and says when generation ends (EOS or a stop token, a
// stop string, the token limit). Generate and the scheduler share it, so a request gives
// the same tokens and text alone or batched.
class TokenStream {
 public:
  // `request` has passed ValidateRequest; `model` and `request` outlive the stream.
  TokenStream(const Model& model, const GenerationRequest& request);

  struct Step {
    std::optional<int32_t> token;  // none when EOS or a stop token ended the stream
    std::string text;              // the text the token completes (often empty: held back)
    std::optional<TokenLogprobs> logprobs;  // with the token, when the request asks
    bool finished = false;
    FinishReason finish_reason = FinishReason::kLength;  // when finished
    std::string tail;              // when finished: text held back until then, released
  };
  Step Next(std::span<const float> logits);
  // The held-back text, for a stream that ends early (cancelled); empty after a stop string.
  std::string ReleaseHeld();

  const std::vector<int32_t>& tokens() const { return tokens_; }  // generated so far

 private:
  const ModelConfig& config_;
  const GenerationRequest& request_;
  const int max_tokens_;
  Sampler sampler_;
  std::optional<IncrementalDecoder> decoder_;
  StopStringFilter stop_filter_;
  std::vector<int32_t> tokens_;
  std::vector<float> processed_;  // the row after penalties, bias and min_tokens masking
};

}  // namespace grinqh
