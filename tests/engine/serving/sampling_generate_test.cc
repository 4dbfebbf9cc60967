// Sampling parity through Generate on the tiny Llama 3 (CPU): min_tokens, ignore_eos, stop
// token ids, seeded determinism with penalties, logprobs against log_softmax of the logits a
// separate Forward gives, and validation that names the field. The distribution's math
// itself is checked against numpy in sampling_reference_test.py.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/serving/generator.h"
#include "engine/serving/model.h"
#include "gtest/gtest.h"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

constexpr int32_t kEos = 1;  // tiny-llama3's eos_token_id

class SamplingGenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = Model::Load(testing::SourceDir() / "models" / "tiny-llama3");
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
  }
  GenerationRequest Request() const {
    GenerationRequest request;
    request.prompt_ids = {0, 512, 77, 3001, 42};
    request.max_tokens = 8;
    return request;
  }
  GenerationResult Run(const GenerationRequest& request) {
    auto result = Generate(*model_, request);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : GenerationResult{};
  }
  std::string Error(const GenerationRequest& request) { return std::string(ValidateRequest(*model_, request).message()); }

  std::unique_ptr<Model> model_;
};

TEST_F(SamplingGenerateTest, MinTokensMasksEosUntilReached) {
  GenerationRequest request = Request();
  request.sampling.logit_bias = {{kEos, 100.f}};  // EOS whenever it is allowed
  EXPECT_EQ(Run(request).tokens.size(), 0u);
  request.min_tokens = 5;
  const GenerationResult result = Run(request);
  EXPECT_EQ(result.tokens.size(), 5u);
  EXPECT_EQ(std::count(result.tokens.begin(), result.tokens.end(), kEos), 0);
  EXPECT_EQ(result.finish_reason, FinishReason::kEos);
}

TEST_F(SamplingGenerateTest, IgnoreEosRunsToTheLimit) {
  GenerationRequest request = Request();
  request.sampling.logit_bias = {{kEos, 100.f}};
  request.stop_at_eos = false;
  const GenerationResult result = Run(request);
  EXPECT_EQ(result.tokens, std::vector<int32_t>(8, kEos));
  EXPECT_EQ(result.finish_reason, FinishReason::kLength);
}

TEST_F(SamplingGenerateTest, StopTokenIdsEndAfterMinTokens) {
  GenerationRequest request = Request();
  request.sampling.logit_bias = {{4000, 100.f}};
  request.stop_token_ids = {4000};
  EXPECT_EQ(Run(request).tokens.size(), 0u);
  request.min_tokens = 3;
  const GenerationResult result = Run(request);
  EXPECT_EQ(result.tokens.size(), 3u);
  EXPECT_EQ(std::count(result.tokens.begin(), result.tokens.end(), 4000), 0);
}

TEST_F(SamplingGenerateTest, RepetitionPenaltyChangesGreedyOutput) {
  GenerationRequest request = Request();
  request.max_tokens = 16;
  const GenerationResult plain = Run(request);
  request.sampling.repetition_penalty = 100.f;  // every seen token is all but banned
  const GenerationResult penalized = Run(request);
  std::vector<int32_t> seen = request.prompt_ids;
  for (int32_t token : penalized.tokens) {
    EXPECT_EQ(std::count(seen.begin(), seen.end(), token), 0) << token;
    seen.push_back(token);
  }
  EXPECT_NE(plain.tokens, penalized.tokens);
}

TEST_F(SamplingGenerateTest, SeededDeterminismWithEveryKnob) {
  GenerationRequest request = Request();
  request.max_tokens = 24;
  request.sampling = {.temperature = 1.2f, .top_k = 200, .top_p = 0.95f, .seed = 7, .min_p = 0.01f,
                      .repetition_penalty = 1.2f, .presence_penalty = 0.5f, .frequency_penalty = 0.3f,
                      .logit_bias = {{5, 1.f}}};
  request.stop_at_eos = false;
  const std::vector<int32_t> first = Run(request).tokens;
  EXPECT_EQ(Run(request).tokens, first);
  request.sampling.seed = 8;
  EXPECT_NE(Run(request).tokens, first);
}

// The chosen token's logprob is log_softmax of the logits a fresh Forward over the prompt
// and the tokens before it gives (no penalty or bias set, so that is the model's own
// distribution); the top-N are the N largest, sorted, and greedy chose the first.
TEST_F(SamplingGenerateTest, LogprobsAreLogSoftmaxOfTheModelsLogits) {
  GenerationRequest request = Request();
  request.logprobs = true;
  request.top_logprobs = 5;
  const GenerationResult result = Run(request);
  ASSERT_EQ(result.logprobs.size(), result.tokens.size());
  std::vector<int32_t> context = request.prompt_ids;
  for (size_t i = 0; i < result.tokens.size(); ++i) {
    std::unique_ptr<KvCache> cache = model_->backend().NewCache();
    ForwardItem item{cache.get(), context, Logits::kLast};
    std::vector<float> logits;
    ASSERT_TRUE(model_->backend().Forward({&item, 1}, logits).ok());
    double sum = 0;
    for (float x : logits) sum += std::exp(double(x));
    const auto log_softmax = [&](int32_t id) { return double(logits[size_t(id)]) - std::log(sum); };

    const TokenLogprobs& lp = result.logprobs[i];
    EXPECT_EQ(lp.token, result.tokens[i]);
    EXPECT_NEAR(lp.logprob, log_softmax(lp.token), 1e-3) << "step " << i;
    ASSERT_EQ(lp.top.size(), 5u);
    EXPECT_EQ(lp.top[0].first, lp.token);  // greedy
    for (size_t k = 0; k < lp.top.size(); ++k) {
      EXPECT_NEAR(lp.top[k].second, log_softmax(lp.top[k].first), 1e-3);
      if (k > 0) {
        EXPECT_GE(lp.top[k - 1].second, lp.top[k].second);
      }
    }
    const float fifth = logits[size_t(lp.top[4].first)];
    EXPECT_EQ(std::count_if(logits.begin(), logits.end(), [&](float x) { return x > fifth; }), 4);
    context.push_back(result.tokens[i]);
  }
}

TEST_F(SamplingGenerateTest, ValidationNamesTheField) {
  const auto error = [&](auto change) {
    GenerationRequest request = Request();
    change(request);
    return Error(request);
  };
  EXPECT_EQ(error([](GenerationRequest&) {}), "");
  EXPECT_NE(error([](auto& r) { r.sampling.logit_bias = {{8192, 1.f}}; }).find("logit_bias"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.sampling.logit_bias = {{3, 101.f}}; }).find("logit_bias"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.stop_token_ids = {-1}; }).find("stop_token_ids"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.min_tokens = 9; }).find("min_tokens"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.top_logprobs = 21; }).find("top_logprobs"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.sampling.min_p = 1.5f; }).find("min_p"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.sampling.repetition_penalty = 0.f; }).find("repetition_penalty"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.sampling.presence_penalty = 2.5f; }).find("presence_penalty"), std::string::npos);
  EXPECT_NE(error([](auto& r) { r.sampling.frequency_penalty = NAN; }).find("frequency_penalty"), std::string::npos);
}

}  // namespace
}  // namespace grinqh
