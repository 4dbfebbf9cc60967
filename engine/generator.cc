#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace grinqh {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStop: return "stop";
    case FinishReason::kEos: return "eos";
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

absl::StatusOr<GenerationResult> Generate(Model& model, const GenerationRequest& request,
                                          const TokenCallback& on_token) {
  using Clock = std::chrono::steady_clock;
  const ModelConfig& config = model.config();
  const Tokenizer* tokenizer = model.tokenizer();

  if (request.prompt_ids.empty()) return absl::InvalidArgumentError("prompt is empty");
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
  if (!request.stop.empty() && tokenizer == nullptr) {
    return absl::InvalidArgumentError("stop strings need a tokenizer, and this model has none");
  }
  GRINQH_RETURN_IF_ERROR(request.sampling.Validate());
  if (request.decode_bits != 0.f) {
    if (model.max_decode_bits() == 0) {
      return absl::InvalidArgumentError("decode bits need a GRINQH model (.grinqh); this model decodes at full precision");
    }
    if (!(request.decode_bits > 0.f && request.decode_bits <= static_cast<float>(model.max_decode_bits()))) {
      return absl::InvalidArgumentError(absl::StrCat("decode bits ", request.decode_bits, " is outside this model's range (0, ",
                                                     model.max_decode_bits(), "]"));
    }
  }

  Backend& backend = model.backend();
  std::unique_ptr<KvCache> cache = backend.NewCache();
  Sampler sampler(request.sampling);
  std::optional<IncrementalDecoder> decoder;
  if (tokenizer != nullptr) decoder.emplace(*tokenizer);
  StopStringFilter stop_filter(request.stop);
  const int max_tokens = std::min(request.max_tokens, config.max_position_embeddings - prompt_length);

  GenerationResult result;
  std::vector<float> logits;
  const auto start = Clock::now();
  ForwardItem item{cache.get(), request.prompt_ids, false};
  GRINQH_RETURN_IF_ERROR(backend.Forward({&item, 1}, logits));
  const auto prefill_done = Clock::now();

  const auto emit = [&](int32_t token, std::string text) {
    result.text += text;
    if (on_token) on_token(token, text);
  };
  for (;;) {
    const int32_t token = sampler.Sample(logits);
    const auto& eos = config.eos_token_ids;
    if (request.stop_at_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) {
      result.finish_reason = FinishReason::kEos;
      break;
    }
    result.tokens.push_back(token);
    emit(token, decoder ? stop_filter.Push(decoder->Push(token)) : std::string());
    if (stop_filter.stopped()) {
      result.finish_reason = FinishReason::kStop;
      break;
    }
    if (static_cast<int>(result.tokens.size()) >= max_tokens) {
      result.finish_reason = FinishReason::kLength;
      break;
    }
    item = ForwardItem{cache.get(), std::span<const int32_t>(&result.tokens.back(), 1), false, request.decode_bits};
    GRINQH_RETURN_IF_ERROR(backend.Forward({&item, 1}, logits));
  }
  // Text still held back (a split character, a partial stop string) ends the stream.
  if (decoder && result.finish_reason != FinishReason::kStop) {
    std::string tail = stop_filter.Push(decoder->Flush());
    tail += stop_filter.Flush();
    if (!tail.empty()) {
      result.text += tail;
      if (on_token) on_token(-1, tail);
    }
  }
  result.prefill_seconds = std::chrono::duration<double>(prefill_done - start).count();
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - prefill_done).count();
  return result;
}

}  // namespace grinqh
