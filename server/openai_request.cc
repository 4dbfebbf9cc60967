#include "server/openai_request.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/status_macros.h"
#include "engine/base/unicode.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status WrongType(const std::string& field, const std::string& expected, const json& value) {
  return Invalid(field, absl::StrCat("must be ", expected, ", got ", value.type_name()));
}

// The field's value; null when absent (OpenAI's server reads both as "not given").
const json& FieldOf(const json& body, const char* name) {
  static const json kNull;
  const auto it = body.find(name);
  return it == body.end() ? kNull : *it;
}

// Whether a JSON value can be read as T, and what a T is called in an error.
template <typename T>
struct JsonType;
template <>
struct JsonType<double> {
  static bool Fits(const json& v) { return v.is_number(); }
  static constexpr const char* kName = "a number";
};
template <>
struct JsonType<int64_t> {
  static bool Fits(const json& v) {
    return v.is_number_integer() &&
           !(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  }
  static constexpr const char* kName = "an integer (64-bit)";
};
template <>
struct JsonType<bool> {
  static bool Fits(const json& v) { return v.is_boolean(); }
  static constexpr const char* kName = "true or false";
};
template <>
struct JsonType<std::string> {
  static bool Fits(const json& v) { return v.is_string(); }
  static constexpr const char* kName = "a string";
};

// Reads the field into `out` when present and not null.
template <typename T>
absl::Status Read(const json& body, const char* name, std::optional<T>& out) {
  const json& v = FieldOf(body, name);
  if (v.is_null()) return absl::OkStatus();
  if (!JsonType<T>::Fits(v)) return WrongType(name, JsonType<T>::kName, v);
  out = v.get<T>();
  return absl::OkStatus();
}

// Fields the engine cannot honour yet, and the values that ask for nothing (null always does).
struct NeutralField {
  const char* name;
  std::vector<json> neutral;
};

const std::vector<NeutralField>& NotSupportedYet() {
  static const std::vector<NeutralField> fields = {
      {"prompt_logprobs", {}},
      {"length_penalty", {1}},
      {"best_of", {1}},
      {"use_beam_search", {false}},
      {"echo", {false}},
      {"suffix", {""}},
      {"include_stop_str_in_output", {false}},
      {"tools", {json::array()}},
      {"tool_choice", {"none", "auto"}},
      {"functions", {json::array()}},
      {"function_call", {"none", "auto"}},
      {"response_format", {json{{"type", "text"}}}},
      {"guided_json", {}},
      {"guided_regex", {}},
      {"guided_choice", {}},
      {"guided_grammar", {}},
      {"reasoning_effort", {}},
      {"prediction", {}},
      {"add_generation_prompt", {true}},
      {"continue_final_message", {false}},
      {"truncate_prompt_tokens", {}},
  };
  return fields;
}

absl::Status CheckNotSupportedYet(const json& body) {
  for (const NeutralField& field : NotSupportedYet()) {
    const json& v = FieldOf(body, field.name);
    if (v.is_null()) continue;
    bool neutral = false;
    for (const json& n : field.neutral) neutral = neutral || v == n;
    if (neutral) continue;
    std::vector<std::string> accepted = {"null"};
    for (const json& n : field.neutral) accepted.push_back(n.dump());
    return Invalid(field.name, absl::StrCat("not supported yet; only ", absl::StrJoin(accepted, " or "),
                                            " is accepted, got ", QuoteInput(v.dump())));
  }
  return absl::OkStatus();
}

absl::Status ReadPrompt(const json& body, v1::GenerateRequest& out) {
  json prompt = FieldOf(body, "prompt");
  if (prompt.is_null()) return Invalid("prompt", "is required");
  // A batch of one ([text] or [[ids]]) is that prompt.
  if (prompt.is_array() && !prompt.empty() && (prompt[0].is_string() || prompt[0].is_array())) {
    if (prompt.size() != 1) return Invalid("prompt", "batches of several prompts are not supported yet; send one per request");
    prompt = json(prompt[0]);
  }
  if (prompt.is_string()) {
    out.set_prompt(prompt.get<std::string>());
    return absl::OkStatus();
  }
  if (!prompt.is_array()) return WrongType("prompt", "a string or an array of token ids", prompt);
  v1::TokenIds& ids = *out.mutable_prompt_ids();  // an empty array is refused as an empty prompt
  for (size_t i = 0; i < prompt.size(); ++i) {
    const json& id = prompt[i];
    const std::string field = absl::StrCat("prompt[", i, "]");
    if (!id.is_number_integer()) return WrongType(field, "a token id (an integer)", id);
    if (id.is_number_unsigned() ? id.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
                                : id.get<int64_t>() < 0) {
      return Invalid(field, absl::StrCat(id.dump(), " is outside the vocabulary"));
    }
    ids.add_ids(id.get<int32_t>());
  }
  return absl::OkStatus();
}

// A message's content: a string, or text parts joined by newlines as vLLM joins them.
absl::StatusOr<std::string> MessageContent(const json& content, const std::string& field) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return WrongType(field, "a string or an array of text parts", content);
  std::vector<std::string> texts;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string part_field = absl::StrCat(field, "[", i, "]");
    if (!part.is_object()) return WrongType(part_field, "an object", part);
    if (FieldOf(part, "type") != "text") return Invalid(absl::StrCat(part_field, ".type"), "only text parts are supported");
    const json& text = FieldOf(part, "text");
    if (!text.is_string()) return WrongType(absl::StrCat(part_field, ".text"), "a string", text);
    texts.push_back(text.get<std::string>());
  }
  return absl::StrJoin(texts, "\n");
}

absl::Status ReadMessages(const json& body, v1::GenerateRequest& out) {
  const json& messages = FieldOf(body, "messages");
  if (messages.is_null()) return Invalid("messages", "is required");
  if (!messages.is_array()) return WrongType("messages", "an array of messages", messages);
  v1::ChatMessages& chat = *out.mutable_messages();  // an empty array is refused as an empty conversation
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return WrongType(field, "an object", m);
    const json& role = FieldOf(m, "role");
    if (!role.is_string()) return WrongType(field + ".role", "a string", role);
    if (const json& calls = FieldOf(m, "tool_calls"); !calls.is_null() && calls != json::array()) {
      return Invalid(field + ".tool_calls", "tool calls are not supported yet");
    }
    GRINQH_ASSIGN_OR_RETURN(std::string content, MessageContent(FieldOf(m, "content"), field + ".content"));
    v1::ChatMessage& message = *chat.add_messages();
    // OpenAI's newer models take instructions as "developer"; the templates know it as "system".
    message.set_role(role == "developer" ? "system" : role.get<std::string>());
    message.set_content(std::move(content));
  }
  return absl::OkStatus();
}

absl::Status ReadStop(const json& body, v1::GenerateRequest& out) {
  const json& stop = FieldOf(body, "stop");
  if (stop.is_null()) return absl::OkStatus();
  if (stop.is_string()) {
    out.add_stop(stop.get<std::string>());
    return absl::OkStatus();
  }
  if (!stop.is_array()) return WrongType("stop", "a string or an array of strings", stop);
  for (size_t i = 0; i < stop.size(); ++i) {
    if (!stop[i].is_string()) return WrongType(absl::StrCat("stop[", i, "]"), "a string", stop[i]);
    out.add_stop(stop[i].get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ReadSampling(const json& body, v1::GenerateRequest& out) {
  // OpenAI's defaults: temperature 1, top_p 1 (the engine's own default is greedy).
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k, seed, n;
  GRINQH_RETURN_IF_ERROR(Read(body, "temperature", temperature));
  GRINQH_RETURN_IF_ERROR(Read(body, "top_p", top_p));
  GRINQH_RETURN_IF_ERROR(Read(body, "top_k", top_k));
  GRINQH_RETURN_IF_ERROR(Read(body, "seed", seed));
  GRINQH_RETURN_IF_ERROR(Read(body, "n", n));
  if (n && *n != 1) return Invalid("n", absl::StrCat("only n = 1 is supported yet, got ", *n));
  out.set_temperature(static_cast<float>(temperature.value_or(1.0)));
  out.set_top_p(static_cast<float>(top_p.value_or(1.0)));
  if (top_k) {  // vLLM's -1 (and 0) mean no limit
    if (*top_k < -1) return Invalid("top_k", absl::StrCat("must be -1 (no limit) or >= 0, got ", *top_k));
    out.set_top_k(static_cast<uint32_t>(std::min<int64_t>(std::max<int64_t>(*top_k, 0), INT32_MAX)));
  }
  if (seed) {
    out.set_seed(static_cast<uint64_t>(*seed));
  } else if (out.temperature() > 0) {
    out.set_seed((static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}());
  }
  return absl::OkStatus();
}

// vLLM's extensions and OpenAI's penalties and logit_bias; the engine checks the ranges.
absl::Status ReadPenalties(const json& body, v1::GenerateRequest& out) {
  std::optional<double> presence, frequency, repetition, min_p;
  std::optional<int64_t> min_tokens;
  std::optional<bool> ignore_eos;
  GRINQH_RETURN_IF_ERROR(Read(body, "presence_penalty", presence));
  GRINQH_RETURN_IF_ERROR(Read(body, "frequency_penalty", frequency));
  GRINQH_RETURN_IF_ERROR(Read(body, "repetition_penalty", repetition));
  GRINQH_RETURN_IF_ERROR(Read(body, "min_p", min_p));
  GRINQH_RETURN_IF_ERROR(Read(body, "min_tokens", min_tokens));
  GRINQH_RETURN_IF_ERROR(Read(body, "ignore_eos", ignore_eos));
  if (presence) out.set_presence_penalty(static_cast<float>(*presence));
  if (frequency) out.set_frequency_penalty(static_cast<float>(*frequency));
  if (repetition) out.set_repetition_penalty(static_cast<float>(*repetition));
  if (min_p) out.set_min_p(static_cast<float>(*min_p));
  if (min_tokens) {
    if (*min_tokens < 0 || *min_tokens > INT32_MAX) return Invalid("min_tokens", absl::StrCat("must be >= 0, got ", *min_tokens));
    out.set_min_tokens(static_cast<uint32_t>(*min_tokens));
  }
  if (ignore_eos) out.set_ignore_eos(*ignore_eos);

  const auto token_id = [](const std::string& field, const json& v) -> absl::StatusOr<int32_t> {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      return WrongType(field, "a token id (an integer >= 0)", v);
    }
    return v.get<int32_t>();
  };
  const json& stop_ids = FieldOf(body, "stop_token_ids");
  if (!stop_ids.is_null()) {
    if (!stop_ids.is_array()) return WrongType("stop_token_ids", "an array of token ids", stop_ids);
    for (size_t i = 0; i < stop_ids.size(); ++i) {
      GRINQH_ASSIGN_OR_RETURN(const int32_t id, token_id(absl::StrCat("stop_token_ids[", i, "]"), stop_ids[i]));
      out.add_stop_token_ids(id);
    }
  }
  // OpenAI's shape: {"token id as a string": bias}.
  const json& bias = FieldOf(body, "logit_bias");
  if (!bias.is_null()) {
    if (!bias.is_object()) return WrongType("logit_bias", "an object mapping token ids to biases", bias);
    for (const auto& [key, value] : bias.items()) {
      int32_t id = 0;
      if (!absl::SimpleAtoi(key, &id) || id < 0) return Invalid("logit_bias", absl::StrCat(QuoteInput(key), " is not a token id"));
      if (!value.is_number()) return WrongType(absl::StrCat("logit_bias.", key), "a number", value);
      (*out.mutable_logit_bias())[id] = value.get<float>();
    }
  }
  return absl::OkStatus();
}

// Chat: logprobs (bool) and top_logprobs (0-20). Completions: logprobs (an integer, the
// alternatives per token; 0 gives the chosen token's alone).
absl::Status ReadLogprobs(const json& body, OpenAiEndpoint endpoint, v1::GenerateRequest& out) {
  std::optional<int64_t> top;
  if (endpoint == OpenAiEndpoint::kChatCompletions) {
    std::optional<bool> logprobs;
    GRINQH_RETURN_IF_ERROR(Read(body, "logprobs", logprobs));
    GRINQH_RETURN_IF_ERROR(Read(body, "top_logprobs", top));
    if (top && !logprobs.value_or(false)) return Invalid("top_logprobs", "needs logprobs: true");
    out.set_logprobs(logprobs.value_or(false));
  } else {
    GRINQH_RETURN_IF_ERROR(Read(body, "logprobs", top));
    out.set_logprobs(top.has_value());
  }
  if (top) {
    const char* field = endpoint == OpenAiEndpoint::kChatCompletions ? "top_logprobs" : "logprobs";
    if (*top < 0 || *top > 20) return Invalid(field, absl::StrCat("must be in [0, 20], got ", *top));
    out.set_top_logprobs(static_cast<uint32_t>(*top));
  }
  return absl::OkStatus();
}

absl::Status ReadPrecision(const json& body, v1::GenerateRequest& out) {
  std::optional<std::string> tier;
  std::optional<double> target_bits, min_bits;
  GRINQH_RETURN_IF_ERROR(Read(body, "grinqh_tier", tier));
  GRINQH_RETURN_IF_ERROR(Read(body, "grinqh_target_bits", target_bits));
  GRINQH_RETURN_IF_ERROR(Read(body, "grinqh_min_bits", min_bits));
  if (tier && target_bits) return Invalid("grinqh_target_bits", "give grinqh_tier or grinqh_target_bits, not both");
  if (tier) out.set_tier(*tier);
  if (target_bits) out.set_target_bits(static_cast<float>(*target_bits));
  if (min_bits) out.set_min_bits(static_cast<float>(*min_bits));
  return absl::OkStatus();
}

absl::Status ReadStreaming(const json& body, OpenAiRequest& out) {
  std::optional<bool> stream;
  GRINQH_RETURN_IF_ERROR(Read(body, "stream", stream));
  out.stream = stream.value_or(false);
  const json& options = FieldOf(body, "stream_options");
  if (options.is_null()) return absl::OkStatus();
  if (!out.stream) return Invalid("stream_options", "is only allowed when stream is true");
  if (!options.is_object()) return WrongType("stream_options", "an object", options);
  std::optional<bool> include_usage;
  if (absl::Status s = Read(options, "include_usage", include_usage); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("stream_options.", s.message()));
  }
  out.include_usage = include_usage.value_or(false);
  return absl::OkStatus();
}

// The field an engine or resolver message starts with: "field: ..." or "field must ...".
std::string LeadingField(std::string_view message) {
  const size_t end = message.find_first_of(": ");
  if (end == std::string_view::npos || end == 0) return "";
  const std::string_view rest = message.substr(end);
  if (rest.rfind(": ", 0) != 0 && rest.rfind(" must ", 0) != 0) return "";
  return std::string(message.substr(0, end));
}

// GenerateRequest's field names, as the OpenAI request calls them.
std::string RenameField(const std::string& field, const OpenAiRequest* request) {
  const size_t end = field.find_first_of(".[");
  const std::string base = field.substr(0, end);
  const std::string rest = end == std::string::npos ? "" : field.substr(end);
  if (base == "prompt_ids") return absl::StrCat("prompt", rest.rfind(".ids", 0) == 0 ? rest.substr(4) : rest);
  if (base == "input") return "prompt";
  if (base == "tier" || base == "target_bits" || base == "min_bits") return absl::StrCat("grinqh_", field);
  if (base == "max_tokens" && request != nullptr) return request->max_tokens_field + rest;
  return field;
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(const json& body, OpenAiEndpoint endpoint) {
  if (!body.is_object()) return WrongType("body", "a JSON object", body);
  OpenAiRequest out;
  v1::GenerateRequest& g = out.generate;
  std::optional<std::string> model;
  GRINQH_RETURN_IF_ERROR(Read(body, "model", model));
  if (model) g.set_model(*model);
  GRINQH_RETURN_IF_ERROR(endpoint == OpenAiEndpoint::kChatCompletions ? ReadMessages(body, g) : ReadPrompt(body, g));

  std::optional<int64_t> max_tokens;
  if (endpoint == OpenAiEndpoint::kChatCompletions && body.contains("max_completion_tokens") &&
      !body["max_completion_tokens"].is_null()) {
    out.max_tokens_field = "max_completion_tokens";  // OpenAI's newer name wins, as in vLLM
  }
  GRINQH_RETURN_IF_ERROR(Read(body, out.max_tokens_field.c_str(), max_tokens));
  if (max_tokens) {
    if (*max_tokens < 1) return Invalid(out.max_tokens_field, absl::StrCat("must be >= 1, got ", *max_tokens));
    g.set_max_tokens(static_cast<uint32_t>(std::min<int64_t>(*max_tokens, std::numeric_limits<uint32_t>::max())));
  }
  GRINQH_RETURN_IF_ERROR(ReadSampling(body, g));
  GRINQH_RETURN_IF_ERROR(ReadPenalties(body, g));
  GRINQH_RETURN_IF_ERROR(ReadLogprobs(body, endpoint, g));
  GRINQH_RETURN_IF_ERROR(ReadStop(body, g));
  GRINQH_RETURN_IF_ERROR(ReadPrecision(body, g));
  GRINQH_RETURN_IF_ERROR(ReadStreaming(body, out));
  std::optional<std::string> user;  // accepted, and ignored: it changes nothing in the output
  GRINQH_RETURN_IF_ERROR(Read(body, "user", user));
  GRINQH_RETURN_IF_ERROR(CheckNotSupportedYet(body));
  return out;
}

OpenAiError ToOpenAiError(const absl::Status& status, const OpenAiRequest* request) {
  OpenAiError error;
  error.message = std::string(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      error.http_status = 400;
      break;
    case absl::StatusCode::kNotFound:
      error.http_status = 404;
      error.code = "model_not_found";
      break;
    case absl::StatusCode::kResourceExhausted:
      error.http_status = 429;
      error.type = "rate_limit_error";
      return error;
    case absl::StatusCode::kUnavailable:
      error.http_status = 503;
      error.type = "service_unavailable";
      return error;
    default:
      error.http_status = 500;
      error.type = "server_error";
      return error;
  }
  if (const std::string field = LeadingField(error.message); !field.empty()) {
    error.param = RenameField(field, request);
    error.message = error.param + error.message.substr(field.size());
  }
  return error;
}

nlohmann::json ErrorBody(const OpenAiError& error) {
  const auto or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"error",
           {{"message", error.message}, {"type", error.type}, {"param", or_null(error.param)}, {"code", or_null(error.code)}}}};
}

}  // namespace grinqh
