#include "server/generate_request.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/base/status_macros.h"
#include "engine/base/unicode.h"

namespace grinqh {
namespace {

constexpr int kMaxLogitBias = 1024;  // OpenAI's limit is 300; vLLM sets none
constexpr int kMaxStopTokenIds = 64;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckText(const std::string& field, const std::string& text) {
  if (!IsValidUtf8(text)) return Invalid(field, "is not valid UTF-8");
  return absl::OkStatus();
}

absl::Status OverLimit(const std::string& field, size_t amount, const char* unit, const char* limit, int value) {
  return Invalid(field, absl::StrCat(amount, " ", unit, " is more than limits.", limit, " (", value, ")"));
}

// The sizes of everything a request asks the server to read, tokenize or produce, checked
// before any of that work: bytes before tokens, counts before contents.
absl::Status CheckSizes(const v1::GenerateRequest& proto, const Model& model, const LimitsSection& limits) {
  switch (proto.input_case()) {
    case v1::GenerateRequest::kPrompt:
      GRINQH_RETURN_IF_ERROR(CheckPromptBytes("prompt", proto.prompt().size(), limits));
      break;
    case v1::GenerateRequest::kPromptIds: {
      const size_t tokens = static_cast<size_t>(proto.prompt_ids().ids_size());
      const int context = model.config().max_position_embeddings;
      if (tokens >= static_cast<size_t>(context)) {
        return Invalid("prompt_ids", absl::StrCat(tokens, " tokens leave no room in the context length ", context));
      }
      break;
    }
    case v1::GenerateRequest::kMessages: {
      const auto& messages = proto.messages().messages();
      if (messages.size() > limits.max_messages) {
        return OverLimit("messages", static_cast<size_t>(messages.size()), "messages", "max_messages", limits.max_messages);
      }
      size_t bytes = 0;
      for (const v1::ChatMessage& m : messages) bytes += m.role().size() + m.content().size();
      GRINQH_RETURN_IF_ERROR(CheckPromptBytes("messages", bytes, limits));
      break;
    }
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  if (proto.max_tokens() > static_cast<uint32_t>(limits.max_tokens)) {
    return OverLimit("max_tokens", proto.max_tokens(), "tokens", "max_tokens", limits.max_tokens);
  }
  if (proto.stop_size() > limits.max_stop_strings) {
    return OverLimit("stop", static_cast<size_t>(proto.stop_size()), "strings", "max_stop_strings", limits.max_stop_strings);
  }
  for (int i = 0; i < proto.stop_size(); ++i) {
    if (proto.stop(i).size() > static_cast<size_t>(limits.max_stop_bytes)) {
      return OverLimit(absl::StrCat("stop[", i, "]"), proto.stop(i).size(), "bytes", "max_stop_bytes",
                       limits.max_stop_bytes);
    }
  }
  if (proto.logit_bias_size() > kMaxLogitBias) {
    return Invalid("logit_bias", absl::StrCat("at most ", kMaxLogitBias, " entries"));
  }
  if (proto.stop_token_ids_size() > kMaxStopTokenIds) {
    return Invalid("stop_token_ids", absl::StrCat("at most ", kMaxStopTokenIds, " ids"));
  }
  return absl::OkStatus();
}

absl::StatusOr<const Tokenizer*> RequireTokenizer(const Model& model, const char* input) {
  if (model.tokenizer() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(input, ": this model has no tokenizer.json; send prompt_ids instead"));
  }
  return model.tokenizer();
}

absl::StatusOr<std::vector<int32_t>> PromptIds(const v1::GenerateRequest& proto, const Model& model,
                                               std::vector<int32_t>& stop_token_ids) {
  switch (proto.input_case()) {
    case v1::GenerateRequest::kPrompt: {
      if (proto.prompt().empty()) return Invalid("prompt", "must not be empty");
      GRINQH_RETURN_IF_ERROR(CheckText("prompt", proto.prompt()));
      GRINQH_ASSIGN_OR_RETURN(const Tokenizer* tokenizer, RequireTokenizer(model, "prompt"));
      return tokenizer->Encode(proto.prompt(), /*add_special_tokens=*/true);
    }
    case v1::GenerateRequest::kPromptIds: {
      const auto& ids = proto.prompt_ids().ids();
      if (ids.empty()) return Invalid("prompt_ids", "must not be empty");
      const int vocab = model.config().vocab_size;
      for (int i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= vocab) {
          return Invalid(absl::StrCat("prompt_ids.ids[", i, "]"),
                         absl::StrCat(ids[i], " is outside the vocabulary [0, ", vocab, ")"));
        }
      }
      return std::vector<int32_t>(ids.begin(), ids.end());
    }
    case v1::GenerateRequest::kMessages: {
      std::vector<ChatMessage> messages;
      for (int i = 0; i < proto.messages().messages_size(); ++i) {
        const v1::ChatMessage& m = proto.messages().messages(i);
        GRINQH_RETURN_IF_ERROR(CheckText(absl::StrCat("messages[", i, "].content"), m.content()));
        messages.push_back({m.role(), m.content()});
      }
      if (messages.empty()) return Invalid("messages", "the conversation is empty");
      GRINQH_ASSIGN_OR_RETURN(const Tokenizer* tokenizer, RequireTokenizer(model, "messages"));
      absl::StatusOr<ChatTemplate> chat = ChatTemplate::ForTokenizer(*tokenizer);
      if (!chat.ok()) return absl::Status(chat.status().code(), absl::StrCat("messages: ", chat.status().message()));
      stop_token_ids.push_back(chat->end_of_turn_id());
      // The template writes BOS itself where it has one; the messages' text cannot forge markers.
      return chat->Encode(*tokenizer, messages);
    }
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  return Invalid("input", "one of prompt, prompt_ids or messages is required");
}

std::string Bits(float bits) { return absl::StrFormat("%g", bits); }

// Chooses decode bits from the tier or the explicit target, within the model's range and
// not below the request's floor.
absl::Status ResolvePrecision(const v1::GenerateRequest& proto, const Model& model, const ServerConfig& config,
                              float auto_bits, ResolvedRequest& out) {
  const int depth = model.max_decode_bits();  // 0: no graded decoding
  const float ceiling = depth > 0 ? static_cast<float>(depth) : 16.f;
  const float min_bits = proto.min_bits();
  if (!(std::isfinite(min_bits) && min_bits >= 0.f && min_bits <= ceiling)) {
    return Invalid("min_bits", absl::StrCat("must be in [0, ", Bits(ceiling), "], got ", Bits(min_bits)));
  }
  float& bits = out.request.decode_bits;
  if (proto.precision_case() == v1::GenerateRequest::kTargetBits) {
    const float target = proto.target_bits();
    if (depth == 0) {
      return Invalid("target_bits", "this model has no graded decoding (not a GRINQH model); use a tier or leave it unset");
    }
    if (!(std::isfinite(target) && target > 0.f && target <= ceiling)) {
      return Invalid("target_bits", absl::StrCat("must be in (0, ", depth, "], the model's stored depth; got ", Bits(target)));
    }
    if (target < min_bits) {
      return Invalid("target_bits", absl::StrCat(Bits(target), " is below min_bits ", Bits(min_bits)));
    }
    bits = target;
    return absl::OkStatus();
  }
  out.tier = proto.precision_case() == v1::GenerateRequest::kTier ? proto.tier() : config.default_tier;
  const Tier* tier = config.FindTier(out.tier);
  if (tier == nullptr) {
    std::vector<std::string> names;
    for (const Tier& t : config.tiers) names.push_back(t.name);
    return Invalid("tier", absl::StrCat("unknown tier ", QuoteInput(out.tier), " (this server has: ", absl::StrJoin(names, ", "), ")"));
  }
  bits = tier->autoscaled ? auto_bits : tier->bits;
  if (depth == 0) {
    if (bits != kFullDepthBits) {
      out.precision_note = absl::StrCat("this model has no graded decoding (bf16): tier '", out.tier,
                                        "' runs at full precision");
    }
    bits = kFullDepthBits;
    return absl::OkStatus();
  }
  if (bits > ceiling) {
    out.precision_note = absl::StrCat("tier '", out.tier, "' asks ", Bits(bits), " bits; the model stores ", depth,
                                      ", so it runs at full depth");
    bits = kFullDepthBits;
  } else if (bits != kFullDepthBits && bits < min_bits) {
    out.precision_note = absl::StrCat("tier '", out.tier, "' at ", Bits(bits), " bits raised to min_bits ", Bits(min_bits));
    bits = min_bits;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckPromptBytes(const char* field, size_t bytes, const LimitsSection& limits) {
  if (bytes <= static_cast<size_t>(limits.max_prompt_bytes)) return absl::OkStatus();
  return OverLimit(field, bytes, "bytes", "max_prompt_bytes", limits.max_prompt_bytes);
}

absl::Status CheckServedModel(const char* field, const std::string& requested, const std::string& served) {
  if (requested.empty() || requested == served) return absl::OkStatus();
  return absl::NotFoundError(
      absl::StrCat(field, ": model ", QuoteInput(requested), " is not served here (this server has '", served, "')"));
}

absl::StatusOr<ResolvedRequest> ResolveGenerateRequest(const v1::GenerateRequest& proto, const Model& model,
                                                       const std::string& served_name, const ServerConfig& config,
                                                       float auto_bits) {
  GRINQH_RETURN_IF_ERROR(CheckServedModel("model", proto.model(), served_name));
  if (proto.request_id().size() > 256) return Invalid("request_id", "longer than 256 bytes");
  GRINQH_RETURN_IF_ERROR(CheckText("request_id", proto.request_id()));
  GRINQH_RETURN_IF_ERROR(CheckSizes(proto, model, config.limits));

  ResolvedRequest out;
  GenerationRequest& request = out.request;
  GRINQH_ASSIGN_OR_RETURN(request.prompt_ids, PromptIds(proto, model, request.stop_token_ids));
  const int context = model.config().max_position_embeddings;
  const int prompt_tokens = static_cast<int>(request.prompt_ids.size());
  if (prompt_tokens >= context) {
    return Invalid(proto.input_case() == v1::GenerateRequest::kMessages ? "messages"
                   : proto.input_case() == v1::GenerateRequest::kPrompt ? "prompt" : "prompt_ids",
                   absl::StrCat(prompt_tokens, " tokens leave no room in the context length ", context));
  }

  const uint32_t max_tokens = proto.max_tokens();
  request.max_tokens = max_tokens == 0 ? config.limits.default_max_tokens : static_cast<int>(max_tokens);

  request.sampling.temperature = proto.temperature();
  request.sampling.top_k = static_cast<int>(std::min<uint32_t>(proto.top_k(), INT_MAX));
  request.sampling.top_p = proto.top_p();
  request.sampling.seed = proto.seed();
  request.sampling.min_p = proto.min_p();
  request.sampling.repetition_penalty = proto.repetition_penalty();
  request.sampling.presence_penalty = proto.presence_penalty();
  request.sampling.frequency_penalty = proto.frequency_penalty();
  for (const auto& [id, bias] : proto.logit_bias()) request.sampling.logit_bias.emplace_back(id, bias);
  std::sort(request.sampling.logit_bias.begin(), request.sampling.logit_bias.end());  // map order is unspecified
  if (const absl::Status status = request.sampling.Validate(); !status.ok()) {
    return absl::InvalidArgumentError(status.message());  // its messages start with the field
  }

  for (int i = 0; i < proto.stop_size(); ++i) {
    const std::string field = absl::StrCat("stop[", i, "]");
    const std::string& stop = proto.stop(i);
    if (stop.empty()) return Invalid(field, "must not be empty");
    GRINQH_RETURN_IF_ERROR(CheckText(field, stop));
    request.stop.push_back(stop);
  }
  if (!request.stop.empty() && model.tokenizer() == nullptr) {
    return absl::FailedPreconditionError("stop: stop strings need a tokenizer, and this model has none");
  }
  request.stop_token_ids.insert(request.stop_token_ids.end(), proto.stop_token_ids().begin(),
                                proto.stop_token_ids().end());
  request.min_tokens = static_cast<int>(std::min<uint32_t>(proto.min_tokens(), INT_MAX));
  request.stop_at_eos = !proto.ignore_eos();
  request.logprobs = proto.logprobs() || proto.top_logprobs() > 0;
  request.top_logprobs = static_cast<int>(std::min<uint32_t>(proto.top_logprobs(), INT_MAX));
  // The engine's checks of these fields (ids against the vocabulary, ranges) name them.
  if (const absl::Status status = ValidateRequest(model, request); !status.ok()) {
    return absl::InvalidArgumentError(status.message());
  }
  GRINQH_RETURN_IF_ERROR(ResolvePrecision(proto, model, config, auto_bits, out));
  return out;
}

}  // namespace grinqh
