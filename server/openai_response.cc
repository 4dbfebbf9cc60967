#include "server/openai_response.h"

#include "engine/base/unicode.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

std::string_view ObjectName(const CompletionHeader& header, bool chunk) {
  if (header.endpoint == OpenAiEndpoint::kCompletions) return "text_completion";  // OpenAI's, streamed or not
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

json Envelope(const CompletionHeader& header, bool chunk, json choices) {
  return {{"id", header.id},
          {"object", ObjectName(header, chunk)},
          {"created", header.created},
          {"model", header.model},
          {"choices", std::move(choices)}};
}

json FinishReasonOrNull(const FinishReason* reason) {
  return reason == nullptr ? json(nullptr) : json(OpenAiFinishReason(*reason));
}

}  // namespace

std::string_view OpenAiFinishReason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStop:
    case FinishReason::kEos: return "stop";
    case FinishReason::kCancelled: return "abort";
  }
  return "stop";
}

json UsageBody(const Usage& usage, const std::string& tier, const std::string& precision_note) {
  json body = {{"prompt_tokens", usage.prompt_tokens},
               {"completion_tokens", usage.completion_tokens},
               {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
               {"grinqh_effective_bits", usage.effective_bits},
               {"grinqh_tier", tier.empty() ? json(nullptr) : json(tier)}};
  if (!precision_note.empty()) body["grinqh_precision_note"] = precision_note;
  return body;
}

json LogprobsBody(OpenAiEndpoint endpoint, const std::vector<TokenLogprobs>& logprobs, const TokenBytesFn& token_bytes,
                  size_t& text_offset) {
  // Token text as JSON strings must be UTF-8: a partial character becomes U+FFFD, as
  // OpenAI's and vLLM's do; chat's "bytes" keeps the exact bytes.
  const auto token = [&](int32_t id) { return SanitizeUtf8(token_bytes(id)); };
  const auto bytes = [&](int32_t id) {
    json list = json::array();
    for (unsigned char c : token_bytes(id)) list.push_back(int(c));
    return list;
  };
  if (endpoint == OpenAiEndpoint::kChatCompletions) {
    json content = json::array();
    for (const TokenLogprobs& lp : logprobs) {
      json top = json::array();
      for (const auto& [id, logprob] : lp.top) top.push_back({{"token", token(id)}, {"logprob", logprob}, {"bytes", bytes(id)}});
      content.push_back({{"token", token(lp.token)}, {"logprob", lp.logprob}, {"bytes", bytes(lp.token)}, {"top_logprobs", top}});
    }
    return {{"content", std::move(content)}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (const TokenLogprobs& lp : logprobs) {
    tokens.push_back(token(lp.token));
    token_logprobs.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [id, logprob] : lp.top) top[token(id)] = logprob;
    top_logprobs.push_back(std::move(top));
    offsets.push_back(text_offset);
    text_offset += token_bytes(lp.token).size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs}, {"text_offset", offsets}};
}

json CompletionBody(const CompletionHeader& header, const std::string& text, FinishReason reason, json usage,
                    json logprobs) {
  json choice = {{"index", 0}, {"logprobs", std::move(logprobs)}, {"finish_reason", OpenAiFinishReason(reason)}};
  if (header.endpoint == OpenAiEndpoint::kCompletions) {
    choice["text"] = text;
  } else {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  }
  json body = Envelope(header, /*chunk=*/false, json::array({std::move(choice)}));
  body["usage"] = std::move(usage);
  return body;
}

json ChunkBody(const CompletionHeader& header, const std::string& text, const FinishReason* reason,
               bool with_usage_field, json logprobs) {
  json choice = {{"index", 0}, {"logprobs", std::move(logprobs)}, {"finish_reason", FinishReasonOrNull(reason)}};
  if (header.endpoint == OpenAiEndpoint::kCompletions) {
    choice["text"] = text;
  } else {
    // The last chunk carries only the finish reason, as OpenAI's does.
    choice["delta"] = text.empty() && reason != nullptr ? json::object() : json{{"content", text}};
  }
  json body = Envelope(header, /*chunk=*/true, json::array({std::move(choice)}));
  if (with_usage_field) body["usage"] = nullptr;
  return body;
}

json RoleChunkBody(const CompletionHeader& header, bool with_usage_field) {
  json choice = {{"index", 0},
                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                 {"logprobs", nullptr},
                 {"finish_reason", nullptr}};
  json body = Envelope(header, /*chunk=*/true, json::array({std::move(choice)}));
  if (with_usage_field) body["usage"] = nullptr;
  return body;
}

json UsageChunkBody(const CompletionHeader& header, json usage) {
  json body = Envelope(header, /*chunk=*/true, json::array());
  body["usage"] = std::move(usage);
  return body;
}

std::string DumpJson(const json& body) { return body.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string SseEvent(const json& body) { return "data: " + DumpJson(body) + "\n\n"; }

}  // namespace grinqh
