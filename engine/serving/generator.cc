#include "engine/serving/generator.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace grinqh {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStop: return "stop";
    case FinishReason::kEos: return "eos";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::string StopStringFilter::Push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  // The earliest stop string wins.
  size_t first = std::string::npos;
  for (const std::string& stop : stops_) first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string released = held_.substr(0, first);
    held_.clear();
    return released;
  }
  // Keep the longest tail that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& stop : stops_) {
    for (size_t n = std::min(stop.size() - 1, held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, stop, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  std::string released = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return released;
}

std::string StopStringFilter::Flush() {
  std::string released = stopped_ ? std::string() : std::move(held_);
  held_.clear();
  return released;
}

absl::Status ValidateRequest(const Model& model, const GenerationRequest& request) {
  const ModelConfig& config = model.config();
  if (request.prompt_ids.empty()) return absl::InvalidArgumentError("prompt is empty");
  for (int32_t id : request.prompt_ids) {
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token id ", id, " is outside the vocabulary [0, ",
                                                     config.vocab_size, ")"));
    }
  }
  if (request.max_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be >= 1, got ", request.max_tokens));
  }
  const int prompt_length = static_cast<int>(request.prompt_ids.size());
  if (prompt_length >= config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", prompt_length,
                                                   " tokens leaves no room in the context length ",
                                                   config.max_position_embeddings));
  }
  for (const std::string& stop : request.stop) {
    if (stop.empty()) return absl::InvalidArgumentError("stop strings must not be empty");
  }
  if (!request.stop.empty() && model.tokenizer() == nullptr) {
    return absl::InvalidArgumentError("stop strings need a tokenizer, and this model has none");
  }
  GRINQH_RETURN_IF_ERROR(request.sampling.Validate());
  const auto check_id = [&](const char* field, int32_t id) {
    if (id >= 0 && id < config.vocab_size) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(field, ": token id ", id, " is outside the vocabulary [0, ",
                                                   config.vocab_size, ")"));
  };
  for (int32_t id : request.stop_token_ids) GRINQH_RETURN_IF_ERROR(check_id("stop_token_ids", id));
  for (const auto& bias : request.sampling.logit_bias) GRINQH_RETURN_IF_ERROR(check_id("logit_bias", bias.first));
  if (request.top_logprobs < 0 || request.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs must be in [0, ", kMaxTopLogprobs, "], got ",
                                                   request.top_logprobs));
  }
  if (request.min_tokens < 0 || request.min_tokens > request.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("min_tokens must be in [0, max_tokens = ", request.max_tokens,
                                                   "], got ", request.min_tokens));
  }
  if (request.decode_bits != 0.f) {
    if (model.max_decode_bits() == 0) {
      return absl::InvalidArgumentError("decode bits need a GRINQH model with graded decoding; this model (a bf16 checkpoint or a fixed-width rtn/gptq/awq file) decodes at full precision only");
    }
    if (!(request.decode_bits > 0.f && request.decode_bits <= static_cast<float>(model.max_decode_bits()))) {
      return absl::InvalidArgumentError(absl::StrCat("decode bits ", request.decode_bits, " is outside this model's range (0, ",
                                                     model.max_decode_bits(), "]"));
    }
  }
  return absl::OkStatus();
}

int MaxNewTokens(const ModelConfig& config, const GenerationRequest& request) {
  return std::min(request.max_tokens, config.max_position_embeddings - static_cast<int>(request.prompt_ids.size()));
}

TokenStream::TokenStream(const Model& model, const GenerationRequest& request)
    : config_(model.config()),
      request_(request),
      max_tokens_(MaxNewTokens(config_, request)),
      sampler_(request.sampling),
      stop_filter_(request.stop) {
  if (model.tokenizer() != nullptr) decoder_.emplace(*model.tokenizer());
}

TokenStream::Step TokenStream::Next(std::span<const float> logits) {
  Step step;
  const auto& eos = config_.eos_token_ids;
  const auto& stops = request_.stop_token_ids;
  const bool mask_ending = static_cast<int>(tokens_.size()) < request_.min_tokens;
  if (mask_ending || request_.sampling.ProcessesLogits()) {
    processed_.assign(logits.begin(), logits.end());
    ProcessLogits(request_.sampling, request_.prompt_ids, tokens_, processed_);
    if (mask_ending) {
      constexpr float kMasked = -std::numeric_limits<float>::infinity();
      if (request_.stop_at_eos) {
        for (int32_t id : eos) processed_[static_cast<size_t>(id)] = kMasked;
      }
      for (int32_t id : stops) processed_[static_cast<size_t>(id)] = kMasked;
    }
    logits = processed_;
  }
  const int32_t token = sampler_.Sample(logits);
  if ((request_.stop_at_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) ||
      std::find(stops.begin(), stops.end(), token) != stops.end()) {
    step.finish_reason = FinishReason::kEos;
  } else {
    step.token = token;
    if (request_.logprobs) step.logprobs = ComputeLogprobs(logits, token, request_.top_logprobs);
    tokens_.push_back(token);
    if (decoder_) step.text = stop_filter_.Push(decoder_->Push(token));
    if (stop_filter_.stopped()) {
      step.finish_reason = FinishReason::kStop;
    } else if (static_cast<int>(tokens_.size()) < max_tokens_) {
      return step;  // goes on
    }
  }
  step.finished = true;
  step.tail = ReleaseHeld();
  return step;
}

std::string TokenStream::ReleaseHeld() {
  if (!decoder_ || stop_filter_.stopped()) return {};
  std::string tail = stop_filter_.Push(decoder_->Flush());
  return tail + stop_filter_.Flush();
}

absl::StatusOr<GenerationResult> Generate(Model& model, const GenerationRequest& request,
                                          const TokenCallback& on_token) {
  using Clock = std::chrono::steady_clock;
  GRINQH_RETURN_IF_ERROR(ValidateRequest(model, request));
  Backend& backend = model.backend();
  std::unique_ptr<KvCache> cache = backend.NewCache();
  TokenStream stream(model, request);

  GenerationResult result;
  std::vector<float> logits;
  const auto start = Clock::now();
  ForwardItem item{cache.get(), request.prompt_ids, Logits::kLast};
  GRINQH_RETURN_IF_ERROR(backend.Forward({&item, 1}, logits));
  const auto prefill_done = Clock::now();

  const auto emit = [&](int32_t token, const std::string& text) {
    result.text += text;
    if (on_token) on_token(token, text);
  };
  for (;;) {
    const TokenStream::Step step = stream.Next(logits);
    if (step.token) emit(*step.token, step.text);
    if (step.logprobs) result.logprobs.push_back(*step.logprobs);
    if (step.finished) {
      // Text still held back (a split character, a partial stop string) ends the stream.
      if (!step.tail.empty()) emit(-1, step.tail);
      result.finish_reason = step.finish_reason;
      break;
    }
    item = ForwardItem{cache.get(), std::span<const int32_t>(&stream.tokens().back(), 1), Logits::kLast, request.decode_bits};
    GRINQH_RETURN_IF_ERROR(backend.Forward({&item, 1}, logits));
  }
  result.tokens = stream.tokens();
  result.prefill_seconds = std::chrono::duration<double>(prefill_done - start).count();
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - prefill_done).count();
  return result;
}

}  // namespace grinqh
