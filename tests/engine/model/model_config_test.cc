// Tests of config.json parsing (transformers 4.x and 5.x styles, Llama 3.x and Qwen3) and of
// the rotary inverse frequencies.
#include "engine/model/model_config.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// meta-llama/Llama-3.1-8B-Instruct/config.json, as published (transformers 4.x).
constexpr char kLlama31_8B[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

constexpr char kLlama31_8B_Generation[] = R"({
  "bos_token_id": 128000,
  "do_sample": true,
  "eos_token_id": [128001, 128008, 128009],
  "temperature": 0.6,
  "top_p": 0.9,
  "transformers_version": "4.43.0.dev0"
})";

// The same model as transformers 5.x writes it: rope settings under rope_parameters.
constexpr char kLlama31_8B_V5[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "dtype": "bfloat16",
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_parameters": {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rope_type": "llama3"
  },
  "tie_word_embeddings": false,
  "transformers_version": "5.0.0",
  "use_cache": true,
  "vocab_size": 128256
})";

// meta-llama/Llama-3.2-1B/config.json: tied embeddings, explicit head_dim, factor 32.
constexpr char kLlama32_1B[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// Qwen/Qwen3-8B/config.json.
constexpr char kQwen3_8B[] = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 12288,
  "max_position_embeddings": 40960,
  "max_window_layers": 36,
  "model_type": "qwen3",
  "num_attention_heads": 32,
  "num_hidden_layers": 36,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

constexpr char kQwen3_8B_Generation[] = R"({
  "bos_token_id": 151643,
  "do_sample": true,
  "eos_token_id": [151645, 151643],
  "pad_token_id": 151643,
  "temperature": 0.6,
  "top_k": 20,
  "top_p": 0.95,
  "transformers_version": "4.51.0"
})";

// Qwen/Qwen3-0.6B/config.json: head_dim 128 although hidden/heads = 64; tied; a sliding
// window size given but unused.
constexpr char kQwen3_0_6B[] = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// A minimal valid llama config; tests splice keys into it.
std::string Minimal(const std::string& extra = "", const std::string& model_type = "llama") {
  return R"({"model_type": ")" + model_type +
         R"(", "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

// Expects FromJson to fail with INVALID_ARGUMENT; returns the message.
std::string Refusal(const std::string& config, const std::string& generation = "") {
  auto c = ModelConfig::FromJson(config, generation);
  EXPECT_FALSE(c.ok()) << "accepted: " << config;
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  return std::string(c.status().message());
}

// ---------------------------------------------------------------------------------------
// The fixtures

TEST(ModelConfigFixtureTest, TinyLlama3) {
  GRINQH_REQUIRE_SHARED();
  auto c = ModelConfig::FromDirectory(testing::SharedDir() / "models" / "tiny-llama3");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->arch, Architecture::kLlama);
  EXPECT_EQ(ArchitectureName(c->arch), "llama");
  EXPECT_EQ(c->hidden_size, 256);
  EXPECT_EQ(c->intermediate_size, 768);
  EXPECT_EQ(c->num_layers, 4);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->vocab_size, 8192);
  EXPECT_EQ(c->max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->rope.type, "default");
  EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  EXPECT_EQ(c->bos_token_id, 0);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(1));
  EXPECT_EQ(RopeInverseFrequencies(*c).size(), 32u);
}

TEST(ModelConfigFixtureTest, SmallQwen3) {
  GRINQH_REQUIRE_SHARED();
  auto c = ModelConfig::FromDirectory(testing::SharedDir() / "models" / "small-qwen3");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->arch, Architecture::kQwen3);
  EXPECT_EQ(ArchitectureName(c->arch), "qwen3");
  EXPECT_EQ(c->hidden_size, 512);
  EXPECT_EQ(c->intermediate_size, 1536);
  EXPECT_EQ(c->num_layers, 8);
  EXPECT_EQ(c->num_heads, 8);
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->vocab_size, 8192);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_EQ(c->rope.type, "default");
  EXPECT_DOUBLE_EQ(c->rope.theta, 1e6);
  EXPECT_EQ(c->bos_token_id, 0);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(1));
}

// ---------------------------------------------------------------------------------------
// Published configs

TEST(ModelConfigTest, Llama31_8B) {
  auto c = ModelConfig::FromJson(kLlama31_8B);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->arch, Architecture::kLlama);
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 14336);
  EXPECT_EQ(c->num_layers, 32);
  EXPECT_EQ(c->num_heads, 32);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->rope.type, "llama3");
  EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c->bos_token_id, 128000);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001, 128008, 128009));

  // generation_config.json repeats the same ids: no duplicates.
  auto with_gen = ModelConfig::FromJson(kLlama31_8B, kLlama31_8B_Generation);
  ASSERT_TRUE(with_gen.ok()) << with_gen.status();
  EXPECT_THAT(with_gen->eos_token_ids, ElementsAre(128001, 128008, 128009));
}

TEST(ModelConfigTest, Llama31_8B_Transformers5MatchesTransformers4) {
  auto v4 = ModelConfig::FromJson(kLlama31_8B);
  auto v5 = ModelConfig::FromJson(kLlama31_8B_V5);
  ASSERT_TRUE(v4.ok()) << v4.status();
  ASSERT_TRUE(v5.ok()) << v5.status();
  EXPECT_EQ(v5->rope.type, "llama3");
  EXPECT_DOUBLE_EQ(v5->rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(v5->rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(v5->rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(v5->rope.high_freq_factor, 4.0);
  EXPECT_EQ(v5->rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(v5->head_dim, v4->head_dim);
  EXPECT_EQ(v5->num_kv_heads, v4->num_kv_heads);
  EXPECT_EQ(v5->eos_token_ids, v4->eos_token_ids);
  EXPECT_EQ(RopeInverseFrequencies(*v5), RopeInverseFrequencies(*v4));

  // 5.x default rope.
  auto plain = ModelConfig::FromJson(
      Minimal(R"("rope_parameters": {"rope_type": "default", "rope_theta": 250000.0})"));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->rope.type, "default");
  EXPECT_DOUBLE_EQ(plain->rope.theta, 250000.0);
}

TEST(ModelConfigTest, Llama32_1B_TiedWithHeadDim) {
  auto c = ModelConfig::FromJson(kLlama32_1B);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->hidden_size, 2048);
  EXPECT_EQ(c->num_layers, 16);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_DOUBLE_EQ(c->rope.factor, 32.0);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001));

  // An int eos in config.json merged with the Instruct generation_config's list.
  auto merged = ModelConfig::FromJson(kLlama32_1B, kLlama31_8B_Generation);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_THAT(merged->eos_token_ids, ElementsAre(128001, 128008, 128009));
}

TEST(ModelConfigTest, Qwen3_8B) {
  auto c = ModelConfig::FromJson(kQwen3_8B, kQwen3_8B_Generation);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->arch, Architecture::kQwen3);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 12288);
  EXPECT_EQ(c->num_layers, 36);
  EXPECT_EQ(c->num_heads, 32);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->rope.type, "default");
  EXPECT_DOUBLE_EQ(c->rope.theta, 1e6);
  EXPECT_EQ(c->bos_token_id, 151643);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645, 151643));
}

TEST(ModelConfigTest, Qwen3_0_6B_HeadDimNotHiddenOverHeads) {
  auto c = ModelConfig::FromJson(kQwen3_0_6B);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_NE(c->head_dim, c->hidden_size / c->num_heads);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_EQ(RopeInverseFrequencies(*c).size(), 64u);
}

// ---------------------------------------------------------------------------------------
// Defaults and variants

TEST(ModelConfigTest, TokenIdsOutsideTheVocabularyAreRefused) {
  EXPECT_THAT(Refusal(Minimal(R"("bos_token_id": 100)")), HasSubstr("bos_token_id"));
  EXPECT_THAT(Refusal(Minimal(R"("eos_token_id": [1, 100])")), HasSubstr("eos_token_id"));
  EXPECT_THAT(Refusal(Minimal(), R"({"eos_token_id": 250})"), HasSubstr("eos_token_id"));
  EXPECT_TRUE(ModelConfig::FromJson(Minimal(R"("bos_token_id": 99, "eos_token_id": 99)")).ok());
}

TEST(ModelConfigTest, Defaults) {
  auto c = ModelConfig::FromJson(Minimal());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_kv_heads, 4);  // = num_attention_heads
  EXPECT_EQ(c->head_dim, 16);     // = hidden / heads
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, -1);
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_EQ(c->rope.type, "default");
  EXPECT_DOUBLE_EQ(c->rope.theta, 10000.0);

  auto nulls = ModelConfig::FromJson(Minimal(
      R"("num_key_value_heads": null, "head_dim": null, "bos_token_id": null,
         "eos_token_id": null, "rope_scaling": null, "attention_bias": null)"));
  ASSERT_TRUE(nulls.ok()) << nulls.status();
  EXPECT_EQ(nulls->num_kv_heads, 4);
  EXPECT_EQ(nulls->head_dim, 16);
  EXPECT_EQ(nulls->bos_token_id, -1);
}

TEST(ModelConfigTest, OldStyleRopeScalingTypeKey) {
  auto c = ModelConfig::FromJson(Minimal(
      R"("rope_theta": 500000.0, "rope_scaling": {"type": "llama3", "factor": 8.0,
         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
         "original_max_position_embeddings": 8192})"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope.type, "llama3");
  EXPECT_DOUBLE_EQ(c->rope.factor, 8.0);
  EXPECT_THAT(Refusal(Minimal(R"("rope_scaling": {"type": "linear", "factor": 2.0})")),
              HasSubstr("\"linear\""));
}

TEST(ModelConfigTest, EosMergeKeepsOrderAndDeduplicates) {
  auto c = ModelConfig::FromJson(Minimal(R"("eos_token_id": [5, 7, 5])"),
                                 R"({"eos_token_id": [9, 7, 2]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(5, 7, 9, 2));
  auto gen_only = ModelConfig::FromJson(Minimal(), R"({"eos_token_id": 3})");
  ASSERT_TRUE(gen_only.ok()) << gen_only.status();
  EXPECT_THAT(gen_only->eos_token_ids, ElementsAre(3));
}

// ---------------------------------------------------------------------------------------
// Refusals, each by name

TEST(ModelConfigTest, RefusesYarnRope) {
  std::string qwen_yarn = kQwen3_8B;
  qwen_yarn.replace(qwen_yarn.find(R"("rope_scaling": null)"), 20,
                    R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                       "original_max_position_embeddings": 32768})");
  EXPECT_THAT(Refusal(qwen_yarn), AllOf(HasSubstr("config.json"), HasSubstr("rope type \"yarn\""),
                                        HasSubstr("rope_scaling")));
  EXPECT_THAT(Refusal(Minimal(R"("rope_parameters": {"rope_type": "dynamic", "factor": 2.0,
                                  "rope_theta": 10000.0})")),
              AllOf(HasSubstr("\"dynamic\""), HasSubstr("rope_parameters")));
  EXPECT_THAT(Refusal(Minimal(R"("rope_scaling": {"rope_type": "linear", "factor": 2.0})")),
              HasSubstr("\"linear\""));
}

TEST(ModelConfigTest, RefusesUnknownModelType) {
  EXPECT_THAT(Refusal(Minimal("", "mistral")),
              AllOf(HasSubstr("model_type"), HasSubstr("\"mistral\"")));
  EXPECT_THAT(Refusal(R"({"hidden_size": 64})"),
              AllOf(HasSubstr("\"model_type\""), HasSubstr("missing")));
}

TEST(ModelConfigTest, RefusesMissingHiddenSize) {
  std::string config = kLlama31_8B;
  config.erase(config.find(R"("hidden_size": 4096,)"), 20);
  EXPECT_THAT(Refusal(config), AllOf(HasSubstr("\"hidden_size\""), HasSubstr("missing")));
  for (const char* key :
       {"intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"}) {
    std::string c = R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100})";
    const std::string needle = std::string("\"") + key + "\"";
    const size_t at = c.find(needle);
    c.replace(at, needle.size(), "\"x_unused\"");
    EXPECT_THAT(Refusal(c), AllOf(HasSubstr(needle), HasSubstr("missing"))) << key;
  }
}

TEST(ModelConfigTest, RefusesAttentionBias) {
  std::string config = kLlama31_8B;
  config.replace(config.find(R"("attention_bias": false)"), 23, R"("attention_bias": true)");
  EXPECT_THAT(Refusal(config), HasSubstr("attention_bias is true"));
  EXPECT_THAT(Refusal(Minimal(R"("mlp_bias": true)")), HasSubstr("mlp_bias is true"));
}

TEST(ModelConfigTest, RefusesUnsupportedFeatures) {
  EXPECT_THAT(Refusal(Minimal(R"("use_sliding_window": true, "sliding_window": 4096)", "qwen3")),
              HasSubstr("use_sliding_window"));
  EXPECT_THAT(Refusal(Minimal(R"("hidden_act": "gelu")")),
              AllOf(HasSubstr("hidden_act"), HasSubstr("\"gelu\"")));
  EXPECT_THAT(Refusal(Minimal(R"("quantization_config": {"quant_method": "fp8", "fmt": "e4m3"})")),
              AllOf(HasSubstr("quantization_config"), HasSubstr("\"fp8\"")));
  EXPECT_THAT(Refusal(Minimal(R"("layer_types": ["full_attention", "sliding_attention"])")),
              HasSubstr("sliding_attention"));
  EXPECT_THAT(Refusal(Minimal(R"("partial_rotary_factor": 0.5)")),
              HasSubstr("partial_rotary_factor"));
}

TEST(ModelConfigTest, RefusesBadSizes) {
  EXPECT_THAT(Refusal(Minimal(R"("num_key_value_heads": 3)")),
              AllOf(HasSubstr("\"num_key_value_heads\""), HasSubstr("does not divide")));
  EXPECT_THAT(Refusal(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
                          "num_hidden_layers": 2, "num_attention_heads": 6, "vocab_size": 100})"),
              AllOf(HasSubstr("hidden_size"), HasSubstr("num_attention_heads")));
  EXPECT_THAT(Refusal(R"({"model_type": "llama", "hidden_size": 0, "intermediate_size": 128,
                          "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100})"),
              AllOf(HasSubstr("\"hidden_size\""), HasSubstr("positive")));
  EXPECT_THAT(Refusal(Minimal(R"("rms_norm_eps": -1e-5)")), HasSubstr("\"rms_norm_eps\""));
  EXPECT_THAT(Refusal(Minimal(R"("head_dim": 15)")), HasSubstr("\"head_dim\""));
  EXPECT_THAT(Refusal(Minimal(R"("rope_theta": 0)")), HasSubstr("rope_theta"));
  EXPECT_THAT(
      Refusal(Minimal(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0})")),
      AllOf(HasSubstr("\"rope_scaling.original_max_position_embeddings\""), HasSubstr("missing")));
}

TEST(ModelConfigTest, RefusesWrongJsonTypes) {
  EXPECT_THAT(Refusal(R"({"model_type": "llama", "hidden_size": "4096", "intermediate_size": 128,
                          "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100})"),
              AllOf(HasSubstr("\"hidden_size\""), HasSubstr("not an integer")));
  EXPECT_THAT(Refusal(Minimal(R"("num_key_value_heads": 2.5)")),
              AllOf(HasSubstr("\"num_key_value_heads\""), HasSubstr("not an integer")));
  EXPECT_THAT(Refusal(Minimal(R"("tie_word_embeddings": "yes")")),
              HasSubstr("\"tie_word_embeddings\""));
  EXPECT_THAT(Refusal(Minimal(R"("eos_token_id": ["</s>"])")), HasSubstr("\"eos_token_id\""));
  EXPECT_THAT(Refusal(Minimal(R"("rope_theta": "big")")), HasSubstr("\"rope_theta\""));
  EXPECT_THAT(Refusal(Minimal(R"("rope_scaling": [8.0])")), HasSubstr("\"rope_scaling\""));
  EXPECT_THAT(Refusal(Minimal(R"("rope_scaling": {"rope_type": "llama3", "factor": "8",
                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 8192})")),
              HasSubstr("\"rope_scaling.factor\""));
  EXPECT_THAT(Refusal(R"({"model_type": 3})"), HasSubstr("\"model_type\""));
  EXPECT_THAT(Refusal("{\"model_type\": "), HasSubstr("not valid JSON"));
  EXPECT_THAT(Refusal("[1, 2]"), HasSubstr("not an object"));
  EXPECT_THAT(Refusal(Minimal(), R"({"eos_token_id": "x"})"),
              AllOf(HasSubstr("generation_config.json"), HasSubstr("\"eos_token_id\"")));
  EXPECT_THAT(Refusal(Minimal(), "not json"),
              AllOf(HasSubstr("generation_config.json"), HasSubstr("not valid JSON")));
}

// A repeated key would let one value hide another (JSON parsers keep either): refused, at
// any depth, naming the key and where it is.
TEST(ModelConfigTest, RefusesRepeatedKeys) {
  EXPECT_THAT(Refusal(Minimal(R"("hidden_size": 128)")),
              AllOf(HasSubstr("config.json"), HasSubstr("\"hidden_size\" twice"), HasSubstr("/hidden_size")));
  EXPECT_THAT(Refusal(Minimal(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0, "factor": 4.0})")),
              AllOf(HasSubstr("\"factor\" twice"), HasSubstr("/rope_scaling/factor")));
  EXPECT_THAT(Refusal(Minimal(), R"({"eos_token_id": 1, "eos_token_id": 2})"),
              AllOf(HasSubstr("generation_config.json"), HasSubstr("\"eos_token_id\" twice")));
  // The same key in two different objects is no repeat.
  EXPECT_TRUE(ModelConfig::FromJson(Minimal(R"("a": {"x": 1}, "b": {"x": 2})")).ok());
}

TEST(ModelConfigTest, RefusesAbsurdNesting) {
  EXPECT_THAT(Refusal(Minimal(R"("x": )" + std::string(1000, '[') + std::string(1000, ']'))),
              AllOf(HasSubstr("config.json"), HasSubstr("nests deeper than 128 levels")));
}

// ---------------------------------------------------------------------------------------
// FromDirectory

class ModelConfigDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("cfg_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  fs::path dir_;
};

TEST_F(ModelConfigDirTest, ReadsConfigAndGenerationConfig) {
  Write("config.json", kQwen3_8B);
  auto alone = ModelConfig::FromDirectory(dir_);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_THAT(alone->eos_token_ids, ElementsAre(151645));
  Write("generation_config.json", kQwen3_8B_Generation);
  auto both = ModelConfig::FromDirectory(dir_);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_THAT(both->eos_token_ids, ElementsAre(151645, 151643));
}

TEST_F(ModelConfigDirTest, MissingConfigNamesPath) {
  auto c = ModelConfig::FromDirectory(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr((dir_ / "config.json").string()));
}

TEST_F(ModelConfigDirTest, RepeatedKeyIsRefusedNamingTheFile) {
  Write("config.json", Minimal(R"("vocab_size": 200)"));
  auto c = ModelConfig::FromDirectory(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()),
              AllOf(HasSubstr((dir_ / "config.json").string()), HasSubstr("\"vocab_size\" twice")));
}

TEST_F(ModelConfigDirTest, ErrorsNameTheFile) {
  Write("config.json", Minimal(R"("hidden_act": "relu")"));
  auto c = ModelConfig::FromDirectory(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              AllOf(HasSubstr((dir_ / "config.json").string()), HasSubstr("\"relu\"")));
  Write("config.json", Minimal());
  Write("generation_config.json", "{");
  c = ModelConfig::FromDirectory(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr((dir_ / "generation_config.json").string()));
}

// ---------------------------------------------------------------------------------------
// Rotary inverse frequencies

TEST(RopeTest, DefaultFrequencies) {
  ModelConfig c;
  c.head_dim = 4;
  c.rope.theta = 10000.0;
  EXPECT_THAT(RopeInverseFrequencies(c), ElementsAre(1.0f, 0.01f));

  c.head_dim = 128;
  c.rope.theta = 500000.0;
  std::vector<float> inv = RopeInverseFrequencies(c);
  ASSERT_EQ(inv.size(), 64u);
  EXPECT_EQ(inv[0], 1.0f);
  for (size_t i = 0; i < inv.size(); ++i) {
    const double expected = 1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / 128.0);
    EXPECT_NEAR(inv[i], expected, expected * 2e-6) << i;
  }
  // Hand-computed: 1 / 500000^(2/128) and 1 / 500000^(126/128).
  EXPECT_FLOAT_EQ(inv[1], 0.81461723f);
  EXPECT_FLOAT_EQ(inv[63], 2.4551408e-06f);
}

TEST(RopeTest, Llama3Scaling) {
  ModelConfig c;
  c.head_dim = 128;
  c.rope.theta = 500000.0;
  c.rope.type = "llama3";
  c.rope.factor = 8.0;
  c.rope.low_freq_factor = 1.0;
  c.rope.high_freq_factor = 4.0;
  c.rope.original_max_position_embeddings = 8192;
  std::vector<float> inv = RopeInverseFrequencies(c);
  ASSERT_EQ(inv.size(), 64u);

  ModelConfig plain = c;
  plain.rope.type = "default";
  std::vector<float> base = RopeInverseFrequencies(plain);

  // High frequencies (wavelength 2*pi/inv < 8192/4 = 2048): unchanged. i <= 28.
  EXPECT_EQ(inv[0], 1.0f);
  for (int i = 0; i <= 28; ++i) EXPECT_EQ(inv[i], base[i]) << i;
  // Low frequencies (wavelength > 8192): divided by the factor. i >= 35.
  for (int i = 35; i < 64; ++i) EXPECT_FLOAT_EQ(inv[i], base[i] / 8.0f) << i;
  EXPECT_FLOAT_EQ(inv[63], 3.0689259e-07f);  // 2.4551408e-06 / 8
  // In between, smoothed: s = (8192 / wavelen - 1) / 3, (1 - s) * inv / 8 + s * inv.
  // Hand-computed from the formula in double precision:
  EXPECT_NEAR(inv[29], 0.0021665708, 0.0021665708 * 1e-5);    // wavelen 2401.7
  EXPECT_NEAR(inv[30], 0.0013718936, 0.0013718936 * 1e-5);    // wavelen 2948.3
  EXPECT_NEAR(inv[34], 0.00017850781, 0.00017850781 * 1e-5);  // wavelen 6695.1
  for (int i = 29; i <= 34; ++i) {
    EXPECT_LT(inv[i], base[i]) << i;
    EXPECT_GT(inv[i], base[i] / 8.0f) << i;
  }
  // Monotone decreasing overall.
  for (size_t i = 1; i < inv.size(); ++i) EXPECT_LT(inv[i], inv[i - 1]) << i;
}

TEST(RopeTest, Llama32Factor32) {
  auto c = ModelConfig::FromJson(kLlama32_1B);
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<float> inv = RopeInverseFrequencies(*c);
  ASSERT_EQ(inv.size(), 32u);
  EXPECT_EQ(inv[0], 1.0f);
  // Last: 1 / 500000^(62/64) / 32.
  const double last = 1.0 / std::pow(500000.0, 62.0 / 64.0) / 32.0;
  EXPECT_NEAR(inv[31], last, last * 1e-5);
}

}  // namespace
}  // namespace grinqh
