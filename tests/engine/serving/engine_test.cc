// Every backend this machine runs, against Hugging Face transformers: logits of every prompt
// position and 48 greedy tokens per prompt, from ../shared/models/*/reference*. Then the
// backend contract's errors, and the KV pool.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "engine/backends/registry.h"
#include "engine/serving/generator.h"
#include "engine/serving/model.h"
#include "engine/model/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

using ::testing::ElementsAreArray;

struct ReferencePrompt {
  std::string text;
  std::vector<int32_t> input_ids;
  std::vector<int32_t> greedy_ids;
  std::string greedy_text;
};

std::vector<ReferencePrompt> ReadReference(const std::filesystem::path& model_dir) {
  std::ifstream in(model_dir / "reference.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<ReferencePrompt> prompts;
  for (const auto& p : j.at("prompts")) {
    prompts.push_back({p.at("text"), p.at("input_ids"), p.at("greedy_ids"), p.at("greedy_text")});
  }
  return prompts;
}

double RelativeL2(const float* got, const float* want, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / norm);
}

std::unique_ptr<Model> LoadOrDie(const std::filesystem::path& dir, const ModelOptions& options = {}) {
  auto model = Model::Load(dir, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

// (fixture model, backend)
class ReferenceModelTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    GRINQH_REQUIRE_SHARED();
    dir_ = testing::SharedDir() / "models" / std::get<0>(GetParam());
    model_ = LoadOrDie(dir_, {.name = std::get<1>(GetParam())});
    ASSERT_NE(model_, nullptr);
    prompts_ = ReadReference(dir_);
    ASSERT_FALSE(prompts_.empty());
  }
  std::filesystem::path dir_;
  std::unique_ptr<Model> model_;
  std::vector<ReferencePrompt> prompts_;
};

TEST_P(ReferenceModelTest, PromptLogitsMatchTransformers) {
  auto reference = SafetensorsFile::Open(dir_ / "reference_logits.safetensors");
  ASSERT_TRUE(reference.ok()) << reference.status();
  const int vocab = model_->config().vocab_size;
  for (size_t i = 0; i < prompts_.size(); ++i) {
    const TensorView& want = (*reference)->tensors().at("logits_" + std::to_string(i));
    ASSERT_EQ(want.dtype, DType::kF32);
    ASSERT_EQ(want.shape, (std::vector<int64_t>{int64_t(prompts_[i].input_ids.size()), vocab}));

    auto cache = model_->backend().NewCache();
    std::vector<float> logits;
    const ForwardItem item{cache.get(), prompts_[i].input_ids, Logits::kAll};
    ASSERT_TRUE(model_->backend().Forward({&item, 1}, logits).ok());
    ASSERT_EQ(logits.size(), size_t(want.numel()));
    const auto* want_logits = reinterpret_cast<const float*>(want.data);
    for (size_t pos = 0; pos < prompts_[i].input_ids.size(); ++pos) {
      EXPECT_LT(RelativeL2(&logits[pos * vocab], &want_logits[pos * vocab], size_t(vocab)), 1e-4)
          << "prompt " << i << " position " << pos;
    }
  }
}

TEST_P(ReferenceModelTest, GreedyGenerationMatchesTransformers) {
  for (const ReferencePrompt& p : prompts_) {
    GenerationRequest request;
    request.prompt_ids = p.input_ids;
    request.max_tokens = static_cast<int>(p.greedy_ids.size());
    request.stop_at_eos = false;  // the reference generated a fixed number of tokens
    auto result = Generate(*model_, request);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_THAT(result->tokens, ElementsAreArray(p.greedy_ids)) << "prompt: " << p.text;
    EXPECT_EQ(result->text, p.greedy_text) << "prompt: " << p.text;
  }
}

// Several sequences in one forward call give what each gives alone: the batch shares
// the matrix products, never the attention.
TEST_P(ReferenceModelTest, BatchedForwardMatchesSeparateCalls) {
  const int vocab = model_->config().vocab_size;
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<ForwardItem> items;
  for (const ReferencePrompt& p : prompts_) {
    caches.push_back(model_->backend().NewCache());
    items.push_back({caches.back().get(), p.input_ids, Logits::kLast});
  }
  std::vector<float> batched;
  ASSERT_TRUE(model_->backend().Forward(items, batched).ok());
  for (size_t i = 0; i < prompts_.size(); ++i) {
    auto cache = model_->backend().NewCache();
    std::vector<float> alone;
    const ForwardItem item{cache.get(), prompts_[i].input_ids, Logits::kLast};
    ASSERT_TRUE(model_->backend().Forward({&item, 1}, alone).ok());
    EXPECT_LT(RelativeL2(&batched[i * vocab], alone.data(), size_t(vocab)), 1e-5) << "prompt " << i;  // different kernels, float rounding
  }
}

INSTANTIATE_TEST_SUITE_P(FixtureModels, ReferenceModelTest,
                         ::testing::Combine(::testing::Values("tiny-llama3", "small-qwen3"),
                                            ::testing::ValuesIn(AvailableBackends())),
                         [](const auto& param_info) {
                           std::string name = std::get<0>(param_info.param) + "_" + std::get<1>(param_info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The bundled default model is tested even without ../shared: the expected ids are
// Hugging Face transformers' greedy output for this prompt (from the fixture's reference.json).
TEST(BundledModelTest, GreedyMatchesTransformers) {
  auto model = LoadOrDie(testing::SourceDir() / "models" / "tiny-llama3");
  ASSERT_NE(model, nullptr);
  ASSERT_NE(model->tokenizer(), nullptr);
  const std::vector<int32_t> prompt = model->tokenizer()->Encode("def fibonacci(n):\n    \"\"\"Return", true);
  EXPECT_THAT(prompt, ElementsAreArray({0, 328, 286, 1712, 266, 1210, 3845, 597, 329, 261, 417, 2144}));
  GenerationRequest request;
  request.prompt_ids = prompt;
  request.max_tokens = 48;
  request.stop_at_eos = false;
  auto result = Generate(*model, request);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->tokens,
              ElementsAreArray({310, 286, 1712, 266, 1210, 3845, 4216, 375, 286, 1712, 266, 1210,
                                3845, 4216, 457, 261, 1796, 201, 261, 1798, 261, 288, 494, 486,
                                201, 262, 2973, 375, 286, 1712, 266, 1210, 3845, 4216, 85, 457,
                                261, 1151, 201, 261, 2409, 261, 286, 1712, 266, 1210, 3845, 201}));
  EXPECT_EQ(result->text,
            " the fibonacci polynomial of fibonacci polynomial.\n\n    Parameters\n    ----------\n"
            "    n : int\n        Number of fibonacci polynomials.\n\n    Returns\n    -------\n"
            "    fibonacci\n");
}

TEST(ModelLoadTest, MissingDirectoryIsNotFound) {
  auto model = Model::Load("/nonexistent/model");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("/nonexistent/model"));
}

}  // namespace
}  // namespace grinqh

namespace grinqh {
namespace {

// A copy of the bundled model without its tokenizer files: it loads, takes token ids.
// A checkpoint whose parts disagree is refused at load, naming what disagrees: a tokenizer
// with ids past vocab_size, and tensors of a layer past num_hidden_layers.
TEST(ModelLoadTest, InconsistentCheckpointsAreRefused) {
  const auto source = testing::SourceDir() / "models" / "tiny-llama3";
  const auto dir = std::filesystem::temp_directory_path() / ("grinqh_inconsistent_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    std::filesystem::copy_file(source / name, dir / name, std::filesystem::copy_options::overwrite_existing);
  }
  const auto rewrite = [&](const char* name, const std::function<void(nlohmann::json&)>& edit) {
    std::ifstream in(source / name);
    nlohmann::json j = nlohmann::json::parse(in);
    edit(j);
    std::ofstream(dir / name) << j.dump();
  };
  rewrite("tokenizer.json", [](nlohmann::json& t) {
    t["added_tokens"].push_back({{"id", 9000}, {"content", "<|far|>"}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", false}, {"special", true}});
  });
  auto model = Model::Load(dir);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("vocab_size"));

  std::filesystem::copy_file(source / "tokenizer.json", dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  rewrite("config.json", [](nlohmann::json& c) { c["num_hidden_layers"] = c["num_hidden_layers"].get<int>() - 1; });
  model = Model::Load(dir);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("num_hidden_layers"));
  std::filesystem::remove_all(dir);
}

TEST(ModelLoadTest, DirectoryWithoutTokenizerTakesIds) {
  const auto source = testing::SourceDir() / "models" / "tiny-llama3";
  const auto dir = std::filesystem::temp_directory_path() / ("grinqh_no_tokenizer_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  for (const char* name : {"config.json", "model.safetensors"}) {
    std::filesystem::copy_file(source / name, dir / name, std::filesystem::copy_options::overwrite_existing);
  }
  auto model = Model::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->tokenizer(), nullptr);
  GenerationRequest request;
  request.prompt_ids = {0, 779, 1568, 383, 488, 201};
  request.max_tokens = 4;
  request.stop_at_eos = false;
  auto result = Generate(**model, request);
  ASSERT_TRUE(result.ok()) << result.status();
  // transformers' greedy continuation of "import numpy as np\n" (fixture reference.json).
  EXPECT_THAT(result->tokens, ElementsAreArray({512, 3383, 454, 3247}));
  EXPECT_EQ(result->text, "");

  request.stop = {"\n"};
  EXPECT_EQ(Generate(**model, request).status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

class BundledModelErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = LoadOrDie(testing::SourceDir() / "models" / "tiny-llama3");
    ASSERT_NE(model_, nullptr);
  }
  std::unique_ptr<Model> model_;
};

TEST_F(BundledModelErrorsTest, OutOfVocabularyIdIsRefusedAndCacheUntouched) {
  auto cache = model_->backend().NewCache();
  const std::vector<int32_t> ids = {0, 8192};
  const ForwardItem item{cache.get(), ids, Logits::kLast};
  std::vector<float> logits;
  const absl::Status status = model_->backend().Forward({&item, 1}, logits);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("8192"));
  EXPECT_EQ(cache->length(), 0);
}

// The KV pool: a step needing more blocks than are free is refused whole (no cache grows),
// a dropped cache returns its blocks, and Truncate returns the ones past its length.
TEST(KvPoolTest, AStepThatDoesNotFitIsRefusedAndDroppedCachesReturnTheirBlocks) {
  auto model = LoadOrDie(testing::SourceDir() / "models" / "tiny-llama3", {.kv_cache_tokens = 64});
  ASSERT_NE(model, nullptr);
  Backend& backend = model->backend();
  const int block = backend.kv_block_tokens();
  ASSERT_EQ(backend.kv_capacity_tokens(), 64);
  ASSERT_EQ(64 % block, 0);
  const std::vector<int32_t> forty(40, 7), thirty(30, 9);
  std::vector<float> logits;

  auto a = backend.NewCache();
  const ForwardItem first{a.get(), forty, Logits::kLast};
  ASSERT_TRUE(backend.Forward({&first, 1}, logits).ok());
  const int64_t taken = (40 + block - 1) / block * block;
  EXPECT_EQ(backend.kv_free_tokens(), 64 - taken);

  auto b = backend.NewCache(), c = backend.NewCache();
  const std::vector<ForwardItem> too_much = {{b.get(), thirty, Logits::kLast}, {c.get(), thirty, Logits::kLast}};
  const absl::Status refused = backend.Forward(too_much, logits);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("KV pool"));
  EXPECT_EQ(b->length(), 0);
  EXPECT_EQ(c->length(), 0);
  EXPECT_EQ(backend.kv_free_tokens(), 64 - taken);

  a->Truncate(block);  // keeps one block
  EXPECT_EQ(backend.kv_free_tokens(), 64 - block);
  a.reset();
  EXPECT_EQ(backend.kv_free_tokens(), 64);
  ASSERT_TRUE(backend.Forward(too_much, logits).ok());
  EXPECT_EQ(b->length(), 30);
  EXPECT_EQ(c->length(), 30);
}

// The registry: unknown names are refused naming the backend, and this build's missing
// CUDA backend says so; auto always gives a backend that runs.
TEST(BackendRegistryTest, NamesAreCheckedAndAutoRuns) {
  const auto dir = testing::SourceDir() / "models" / "tiny-llama3";
  auto unknown = Model::Load(dir, {.name = "tpu"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::HasSubstr("\"tpu\""));
  if (std::find(AvailableBackends().begin(), AvailableBackends().end(), "cuda") == AvailableBackends().end()) {
    auto cuda = Model::Load(dir, {.name = "cuda"});
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  auto automatic = LoadOrDie(dir, {.name = "auto"});
  ASSERT_NE(automatic, nullptr);
  EXPECT_NE(std::find(AvailableBackends().begin(), AvailableBackends().end(), std::string(automatic->backend().name())),
            AvailableBackends().end());
}

TEST_F(BundledModelErrorsTest, ACacheTwiceInOneBatchIsRefused) {
  auto cache = model_->backend().NewCache();
  const std::vector<int32_t> ids = {1, 2, 3};
  const std::vector<ForwardItem> items = {{cache.get(), ids, Logits::kLast}, {cache.get(), ids, Logits::kLast}};
  std::vector<float> logits;
  EXPECT_EQ(model_->backend().Forward(items, logits).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache->length(), 0);
}

TEST_F(BundledModelErrorsTest, PromptFillingTheContextIsRefused) {
  GenerationRequest request;
  request.prompt_ids.assign(size_t(model_->config().max_position_embeddings), 5);
  EXPECT_EQ(Generate(*model_, request).status().code(), absl::StatusCode::kInvalidArgument);
  request.prompt_ids.clear();
  EXPECT_EQ(Generate(*model_, request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BundledModelErrorsTest, StopStringEndsGenerationAndIsNotReturned) {
  GenerationRequest request;
  request.prompt_ids = model_->tokenizer()->Encode("def fibonacci(n):\n    \"\"\"Return", true);
  request.max_tokens = 48;
  request.stop = {"Parameters"};
  std::string streamed;
  auto result = Generate(*model_, request, [&](int32_t, std::string_view text) { streamed += text; });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finish_reason, FinishReason::kStop);
  EXPECT_EQ(result->text, " the fibonacci polynomial of fibonacci polynomial.\n\n    ");
  EXPECT_EQ(streamed, result->text);
}

TEST_F(BundledModelErrorsTest, SameSeedSameSample) {
  GenerationRequest request;
  request.prompt_ids = {0, 779, 1568, 383, 488, 201};
  request.max_tokens = 24;
  request.sampling = {.temperature = 1.0f, .top_k = 50, .top_p = 0.95f, .seed = 1234};
  auto a = Generate(*model_, request);
  auto b = Generate(*model_, request);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  request.sampling.seed = 99;
  auto c = Generate(*model_, request);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->tokens, c->tokens);
}

}  // namespace
}  // namespace grinqh
