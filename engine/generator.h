// The generation loop for one request: prefill the prompt, then decode token by token,
// streaming text as it completes, until EOS, a stop string or the token limit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model.h"
#include "engine/sampler.h"

namespace grinqh {

enum class FinishReason { kLength, kStop, kEos };
std::string_view FinishReasonName(FinishReason reason);  // "length", "stop", "eos"

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;
  int max_tokens = 128;
  SamplingParams sampling;
  // Generation ends when the text contains one of these; the stop string itself and
  // anything after it are not returned. Needs the model's tokenizer.
  std::vector<std::string> stop;
  bool stop_at_eos = true;
  // GRINQH: average bits per weight each decode step reads (prefill reads the full stored
  // depth). 0 decodes at full depth; otherwise (0, model.max_decode_bits()].
  float decode_bits = 0.f;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids; an ending EOS is not included
  std::string text;             // empty when the model has no tokenizer
  FinishReason finish_reason = FinishReason::kLength;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Called for each generated token with the text it completes (often empty: bytes of a
// split character, or text that may be the start of a stop string, are held back).
// A last call with token -1 releases what was still held when generation ended.
using TokenCallback = std::function<void(int32_t token, std::string_view text)>;

absl::StatusOr<GenerationResult> Generate(Model& model, const GenerationRequest& request,
                                          const TokenCallback& on_token = {});

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

}  // namespace grinqh
