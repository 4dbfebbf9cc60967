// The bodies the OpenAI-compatible API answers with: a whole completion, the chunks of a
// streamed one (server-sent events), and the usage object with GRINQH's additions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/serving/generator.h"
#include "engine/serving/scheduler.h"
#include "nlohmann/json.hpp"
#include "server/openai_request.h"

namespace grinqh {

// What every body of one completion repeats.
struct CompletionHeader {
  OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions;
  std::string id;     // "cmpl-N" or "chatcmpl-N"
  int64_t created = 0;  // Unix seconds
  std::string model;
};

// OpenAI's names: "length", "stop" (a stop string, EOS or the end of turn), and vLLM's "abort"
// for a request the server ended (shutdown grace elapsed).
std::string_view OpenAiFinishReason(FinishReason reason);

// prompt_tokens, completion_tokens, total_tokens, and grinqh_effective_bits, grinqh_tier
// (null for an explicit target) and grinqh_precision_note (when the precision asked was not given).
nlohmann::json UsageBody(const Usage& usage, const std::string& tier, const std::string& precision_note);

// A token's text for logprobs: its bytes (possibly part of a UTF-8 character).
using TokenBytesFn = std::function<std::string(int32_t id)>;

// The choice's "logprobs" in OpenAI's shape for the endpoint. Chat: {"content": [{"token",
// "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}. Completions:
// {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"};
// `text_offset` is where the first token starts in the completion's text, and moves past
// these tokens. Null when the request asked for none.
nlohmann::json LogprobsBody(OpenAiEndpoint endpoint, const std::vector<TokenLogprobs>& logprobs,
                            const TokenBytesFn& token_bytes, size_t& text_offset);

// The whole completion (stream = false).
nlohmann::json CompletionBody(const CompletionHeader& header, const std::string& text, FinishReason reason,
                              nlohmann::json usage, nlohmann::json logprobs = nullptr);

// One streamed chunk: a text delta, with the finish reason in the last one. `with_usage_field`
// (stream_options.include_usage) adds "usage": null, as OpenAI does before the usage chunk.
nlohmann::json ChunkBody(const CompletionHeader& header, const std::string& text, const FinishReason* reason,
                         bool with_usage_field, nlohmann::json logprobs = nullptr);
// A chat stream's first chunk: the assistant's role, no text yet.
nlohmann::json RoleChunkBody(const CompletionHeader& header, bool with_usage_field);
// The chunk after the last one when include_usage is set: no choices, the usage.
nlohmann::json UsageChunkBody(const CompletionHeader& header, nlohmann::json usage);

// "data: <json>\n\n"; and the stream's end.
std::string SseEvent(const nlohmann::json& body);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Text that is valid UTF-8 (the engine emits whole characters; a bad byte would be replaced).
std::string DumpJson(const nlohmann::json& body);

}  // namespace grinqh
