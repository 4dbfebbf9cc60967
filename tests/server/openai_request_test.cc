// ParseOpenAiRequest: OpenAI's request bodies into GenerateRequests; ToOpenAiError: statuses
// into OpenAI's error objects, in the request's own field names.
#include "server/openai_request.h"
#include "server/openai_response.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

absl::StatusOr<OpenAiRequest> Completion(const json& body) {
  return ParseOpenAiRequest(body, OpenAiEndpoint::kCompletions);
}

// The error a body gets, as the client sees it.
OpenAiError ErrorOf(const json& body, OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions) {
  absl::StatusOr<OpenAiRequest> request = ParseOpenAiRequest(body, endpoint);
  EXPECT_FALSE(request.ok()) << body.dump();
  return ToOpenAiError(request.status());
}

TEST(ParseOpenAiRequest, ReadsTheFieldsTheEngineHonours) {
  absl::StatusOr<OpenAiRequest> request =
      Completion({{"model", "m"}, {"prompt", "def f():"}, {"max_tokens", 7}, {"temperature", 0}, {"top_p", 0.5},
                  {"top_k", -1}, {"seed", 3}, {"stop", "\n\n"}, {"stream", true},
                  {"stream_options", {{"include_usage", true}}}, {"grinqh_tier", "fast"}, {"grinqh_min_bits", 2.5},
                  {"user", "u"}, {"an_unknown_field", {1, 2}}});
  ASSERT_TRUE(request.ok()) << request.status();
  const v1::GenerateRequest& g = request->generate;
  EXPECT_EQ(g.model(), "m");
  EXPECT_EQ(g.prompt(), "def f():");
  EXPECT_EQ(g.max_tokens(), 7u);
  EXPECT_EQ(g.temperature(), 0.f);
  EXPECT_EQ(g.top_p(), 0.5f);
  EXPECT_EQ(g.top_k(), 0u);  // -1: no limit, as vLLM reads it
  EXPECT_EQ(g.seed(), 3u);
  ASSERT_EQ(g.stop_size(), 1);
  EXPECT_EQ(g.stop(0), "\n\n");
  EXPECT_EQ(g.tier(), "fast");
  EXPECT_EQ(g.min_bits(), 2.5f);
  EXPECT_TRUE(request->stream);
  EXPECT_TRUE(request->include_usage);
}

TEST(ParseOpenAiRequest, DefaultsAreOpenAis) {
  absl::StatusOr<OpenAiRequest> request = Completion({{"prompt", "x"}});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->generate.temperature(), 1.f);
  EXPECT_EQ(request->generate.max_tokens(), 0u);  // the server's default
  EXPECT_FALSE(request->stream);
}

TEST(ParseOpenAiRequest, PromptsAsTextTokenIdsOrABatchOfOne) {
  EXPECT_EQ(Completion({{"prompt", {1, 2, 3}}})->generate.prompt_ids().ids_size(), 3);
  EXPECT_EQ(Completion({{"prompt", {"text"}}})->generate.prompt(), "text");
  EXPECT_EQ(Completion({{"prompt", {{4, 5}}}})->generate.prompt_ids().ids_size(), 2);
  EXPECT_EQ(ErrorOf({{"prompt", {"a", "b"}}}).param, "prompt");
  EXPECT_EQ(ErrorOf({{"prompt", {1, "b"}}}).param, "prompt[1]");
  EXPECT_EQ(ErrorOf({{"prompt", {1, -2}}}).param, "prompt[1]");
  EXPECT_EQ(ErrorOf({{"max_tokens", 3}}).param, "prompt");
}

TEST(ParseOpenAiRequest, ChatMessagesWithTextParts) {
  absl::StatusOr<OpenAiRequest> request = ParseOpenAiRequest(
      {{"messages",
        {{{"role", "developer"}, {"content", "be brief"}},
         {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}}}},
       {"max_completion_tokens", 9},
       {"max_tokens", 4}},
      OpenAiEndpoint::kChatCompletions);
  ASSERT_TRUE(request.ok()) << request.status();
  const v1::ChatMessages& messages = request->generate.messages();
  ASSERT_EQ(messages.messages_size(), 2);
  EXPECT_EQ(messages.messages(0).role(), "system");
  EXPECT_EQ(messages.messages(1).content(), "a\nb");
  EXPECT_EQ(request->generate.max_tokens(), 9u);  // the newer name wins
  EXPECT_EQ(request->max_tokens_field, "max_completion_tokens");

  const auto chat_error = [](const json& conversation) {
    return ErrorOf({{"messages", conversation}}, OpenAiEndpoint::kChatCompletions).param;
  };
  EXPECT_EQ(chat_error("hi"), "messages");
  EXPECT_EQ(chat_error({{{"role", 1}}}), "messages[0].role");
  EXPECT_EQ(chat_error({{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}), "messages[0].content[0].type");
}

TEST(ParseOpenAiRequest, SamplingExtensionsAndLogprobsReachTheRequest) {
  const auto completion = Completion({{"prompt", "x"}, {"presence_penalty", 0.5}, {"frequency_penalty", -1},
                                      {"repetition_penalty", 1.2}, {"min_p", 0.05}, {"logit_bias", {{"5", 10}, {"7", -3.5}}},
                                      {"stop_token_ids", {2, 9}}, {"ignore_eos", true}, {"min_tokens", 4}, {"logprobs", 3}});
  ASSERT_TRUE(completion.ok()) << completion.status();
  const v1::GenerateRequest& g = completion->generate;
  EXPECT_FLOAT_EQ(g.presence_penalty(), 0.5f);
  EXPECT_FLOAT_EQ(g.frequency_penalty(), -1.f);
  EXPECT_FLOAT_EQ(g.repetition_penalty(), 1.2f);
  EXPECT_FLOAT_EQ(g.min_p(), 0.05f);
  EXPECT_EQ(g.logit_bias().size(), 2u);
  EXPECT_FLOAT_EQ(g.logit_bias().at(7), -3.5f);
  EXPECT_EQ(g.stop_token_ids_size(), 2);
  EXPECT_TRUE(g.ignore_eos());
  EXPECT_EQ(g.min_tokens(), 4u);
  EXPECT_TRUE(g.logprobs());
  EXPECT_EQ(g.top_logprobs(), 3u);
  EXPECT_TRUE(Completion({{"prompt", "x"}, {"logprobs", 0}})->generate.logprobs());  // the chosen token's alone
  EXPECT_FALSE(Completion({{"prompt", "x"}, {"logprobs", nullptr}})->generate.logprobs());

  const auto chat = ParseOpenAiRequest({{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"logprobs", true},
                                        {"top_logprobs", 2}}, OpenAiEndpoint::kChatCompletions);
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_TRUE(chat->generate.logprobs());
  EXPECT_EQ(chat->generate.top_logprobs(), 2u);
  EXPECT_EQ(ErrorOf({{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"top_logprobs", 2}},
                    OpenAiEndpoint::kChatCompletions).param, "top_logprobs");  // needs logprobs: true
  EXPECT_EQ(ErrorOf({{"prompt", "x"}, {"logit_bias", {{"five", 1}}}}).param, "logit_bias");
  EXPECT_EQ(ErrorOf({{"prompt", "x"}, {"logprobs", 21}}).param, "logprobs");
  EXPECT_EQ(ErrorOf({{"prompt", "x"}, {"stop_token_ids", {-1}}}).param, "stop_token_ids[0]");
}

// OpenAI's shapes: chat's content list with bytes, completions' parallel lists and offsets;
// a partial UTF-8 character is U+FFFD in the text and exact in "bytes".
TEST(LogprobsBody, FollowsOpenAisShapes) {
  const std::vector<TokenLogprobs> logprobs = {{.token = 1, .logprob = -0.5f, .top = {{1, -0.5f}, {2, -1.5f}}},
                                               {.token = 2, .logprob = -2.f, .top = {}}};
  const auto token_bytes = [](int32_t id) { return id == 1 ? std::string("ab") : std::string("\xe6"); };
  size_t offset = 0;
  const json chat = LogprobsBody(OpenAiEndpoint::kChatCompletions, logprobs, token_bytes, offset);
  EXPECT_EQ(chat, json::parse(R"({"content": [
      {"token": "ab", "logprob": -0.5, "bytes": [97, 98],
       "top_logprobs": [{"token": "ab", "logprob": -0.5, "bytes": [97, 98]},
                        {"token": "\ufffd", "logprob": -1.5, "bytes": [230]}]},
      {"token": "\ufffd", "logprob": -2.0, "bytes": [230], "top_logprobs": []}]})"));
  offset = 10;
  const json completion = LogprobsBody(OpenAiEndpoint::kCompletions, logprobs, token_bytes, offset);
  EXPECT_EQ(completion, json::parse(R"({"tokens": ["ab", "\ufffd"], "token_logprobs": [-0.5, -2.0],
      "top_logprobs": [{"ab": -0.5, "\ufffd": -1.5}, {}], "text_offset": [10, 12]})"));
  EXPECT_EQ(offset, 13u);
}

TEST(ParseOpenAiRequest, WhatTheEngineCannotDoIsRefusedUnlessNeutral) {
  const json neutral = {{"prompt", "x"}, {"n", 1}, {"best_of", 1}, {"echo", false}, {"use_beam_search", false}};
  EXPECT_TRUE(Completion(neutral).ok()) << Completion(neutral).status();
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"n", 2}, {"best_of", 2}, {"echo", true}, {"response_format", {{"type", "json_object"}}}}) {
    json body = {{"prompt", "x"}};
    body[field] = value;
    const OpenAiError error = ErrorOf(body);
    EXPECT_EQ(error.http_status, 400);
    EXPECT_EQ(error.param, field);
    EXPECT_THAT(error.message, HasSubstr(field == "n" ? "only n = 1" : "not supported yet"));
  }
}

TEST(ParseOpenAiRequest, WrongTypesNameTheField) {
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{{"temperature", "hot"},
                                                                               {"max_tokens", 2.5},
                                                                               {"max_tokens", 0},
                                                                               {"top_k", -2},
                                                                               {"seed", "s"},
                                                                               {"stream", "yes"},
                                                                               {"stop", 3},
                                                                               {"grinqh_target_bits", "3"},
                                                                               {"model", 1}}) {
    json body = {{"prompt", "x"}};
    body[field] = value;
    EXPECT_EQ(ErrorOf(body).param, field) << body.dump();
  }
  EXPECT_EQ(ErrorOf({{"prompt", "x"}, {"stream_options", {{"include_usage", true}}}}).param, "stream_options");
  EXPECT_EQ(ErrorOf({{"prompt", "x"}, {"grinqh_tier", "fast"}, {"grinqh_target_bits", 3}}).param, "grinqh_target_bits");
  EXPECT_EQ(ErrorOf(json::array()).param, "body");
}

TEST(ToOpenAiError, StatusCodesAndFieldNames) {
  OpenAiRequest chat;
  chat.max_tokens_field = "max_completion_tokens";
  const auto error = [&](const absl::Status& status) { return ToOpenAiError(status, &chat); };
  EXPECT_EQ(error(absl::InvalidArgumentError("prompt_ids.ids[2]: 9 is outside the vocabulary")).param, "prompt[2]");
  EXPECT_EQ(error(absl::InvalidArgumentError("prompt_ids.ids[2]: 9 is outside")).message, "prompt[2]: 9 is outside");
  EXPECT_EQ(error(absl::InvalidArgumentError("tier: unknown tier 'x'")).param, "grinqh_tier");
  EXPECT_EQ(error(absl::InvalidArgumentError("min_bits: must be in [0, 8]")).param, "grinqh_min_bits");
  EXPECT_EQ(error(absl::InvalidArgumentError("max_tokens: must be <= 4096")).param, "max_completion_tokens");
  EXPECT_EQ(error(absl::InvalidArgumentError("top_p must be in (0, 1], got 2")).param, "top_p");
  EXPECT_EQ(error(absl::FailedPreconditionError("messages: no chat template")).http_status, 400);
  EXPECT_EQ(error(absl::InvalidArgumentError("the whole thing is wrong")).param, "");

  const OpenAiError not_found = error(absl::NotFoundError("model: model 'x' is not served here"));
  EXPECT_EQ(not_found.http_status, 404);
  EXPECT_EQ(not_found.code, "model_not_found");
  EXPECT_EQ(error(absl::ResourceExhaustedError("the queue is full")).http_status, 429);
  EXPECT_EQ(error(absl::UnavailableError("shutting down")).http_status, 503);
  EXPECT_EQ(error(absl::InternalError("backend failed")).http_status, 500);

  const json body = ErrorBody(not_found);
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "model");
  EXPECT_TRUE(ErrorBody(error(absl::UnavailableError("x")))["error"]["param"].is_null());
}

}  // namespace
}  // namespace grinqh
