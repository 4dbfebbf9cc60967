// A loaded model: its config, its weights (mapped from the checkpoint), its tokenizer
// when the directory has one, and the backend that runs it.
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/backends/backend.h"
#include "engine/model/grinqh_file.h"
#include "engine/model/model_config.h"
#include "engine/model/safetensors.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/model/weights.h"

namespace grinqh {

struct ModelOptions {
  int num_threads = 0;  // CPU backend threads; 0 = one per core
};

class Model {
 public:
  // A Hugging Face model directory (config.json, model.safetensors or shards with an
  // index, optionally tokenizer.json + tokenizer_config.json), or a .grinqh file.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::filesystem::path& path,
                                                     const ModelOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const ModelOptions& options() const { return options_; }
  Backend& backend() { return *backend_; }
  // Null when the directory has no tokenizer.json: generation then takes token ids.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // GRINQH: the deepest level decode can read (the stored hierarchy's depth); 0 for a
  // model without nested weights, which decodes at full precision only.
  int max_decode_bits() const { return max_decode_bits_; }
  // GRINQH: input channels per scale and zero (0 for a model without nested weights).
  int group_size() const { return group_size_; }

 private:
  Model() = default;
  // The .grinqh path of Load (engine/model/grinqh_reader.cc).
  static absl::StatusOr<std::unique_ptr<Model>> LoadGrinqh(const std::filesystem::path& path,
                                                           const ModelOptions& options);
  ModelConfig config_;
  ModelOptions options_;
  std::unique_ptr<Checkpoint> checkpoint_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  // A .grinqh model: the mapped file, the full-depth weights dequantized for prefill, and
  // the nested store each linear layer's graded rows read.
  std::unique_ptr<GrinqhFile> grinqh_file_;
  std::vector<std::vector<float>> full_depth_;
  std::vector<std::unique_ptr<NestedLinear>> nested_;
  int max_decode_bits_ = 0;
  int group_size_ = 0;
};

}  // namespace grinqh
