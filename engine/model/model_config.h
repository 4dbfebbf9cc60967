// The architecture of a Llama 3 / Qwen3 checkpoint, read from Hugging Face's config.json.
//
// Accepts config.json as written by transformers 4.x (rope_theta, rope_scaling) and
// 5.x (rope_parameters). Settings this engine cannot run (other model types, other rope
// types, attention biases, sliding windows, ...) are refused by name rather than ignored.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace grinqh {

enum class Architecture { kLlama, kQwen3 };
std::string_view ArchitectureName(Architecture arch);  // "llama", "qwen3"

struct RopeConfig {
  double theta = 10000.0;
  // "default" or "llama3" (the Llama 3.1 frequency-dependent scaling).
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // given, or hidden_size / num_heads
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = false;
  bool qk_norm = false;  // Qwen3: RMSNorm over each head of q and k before rope
  RopeConfig rope;
  int bos_token_id = -1;            // -1 when the config names none
  std::vector<int> eos_token_ids;   // config.json's, plus generation_config.json's

  // Parses config.json text. generation_config_json may be empty.
  static absl::StatusOr<ModelConfig> FromJson(std::string_view config_json,
                                              std::string_view generation_config_json = {});
  // Reads config.json (required) and generation_config.json (optional) in model_dir.
  static absl::StatusOr<ModelConfig> FromDirectory(const std::filesystem::path& model_dir);
};

// Rotary inverse frequencies, head_dim / 2 of them, with the configured scaling applied,
// computed as transformers does (fp32 result).
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

}  // namespace grinqh
