// An OpenAI-style request body (POST /v1/completions, /v1/chat/completions), read as
// OpenAI's and vLLM's servers read it and turned into a v1::GenerateRequest, so that
// ResolveGenerateRequest checks and resolves it exactly as it does a gRPC call.
//
// Unknown fields are ignored, as OpenAI's server does. Fields the engine cannot honour yet
// (n > 1, prompt_logprobs, beam search, tools, guided decoding, ...) are accepted at their neutral value
// only: any other value is refused naming the field, never silently ignored.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "grinqh/v1/inference.pb.h"
#include "nlohmann/json.hpp"

namespace grinqh {

enum class OpenAiEndpoint { kCompletions, kChatCompletions };

struct OpenAiRequest {
  v1::GenerateRequest generate;  // model, input, limits, sampling, stop strings, precision
  bool stream = false;
  bool include_usage = false;    // stream_options.include_usage: a last chunk with the usage
  // Which field set the token limit, to name it in errors: max_tokens or max_completion_tokens.
  std::string max_tokens_field = "max_tokens";
};

// INVALID_ARGUMENT whose message starts with the offending field's name ("temperature: ...").
// A request that names no seed and samples gets a random one, as OpenAI's API does.
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(const nlohmann::json& body, OpenAiEndpoint endpoint);

// OpenAI's error object, {"error": {"message", "type", "param", "code"}}, and its HTTP status.
struct OpenAiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault, in the OpenAI request's names; may be empty
  std::string code;   // may be empty
};

// The error a status from ParseOpenAiRequest, ResolveGenerateRequest or Scheduler::Submit
// becomes: INVALID_ARGUMENT and FAILED_PRECONDITION 400, NOT_FOUND 404, RESOURCE_EXHAUSTED
// 429, UNAVAILABLE 503, anything else 500. The field the message starts with is renamed from
// GenerateRequest's names to the request's (prompt_ids → prompt, tier → grinqh_tier, ...).
OpenAiError ToOpenAiError(const absl::Status& status, const OpenAiRequest* request = nullptr);

nlohmann::json ErrorBody(const OpenAiError& error);

}  // namespace grinqh
