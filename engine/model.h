// A loaded model: its config, its weights (mapped from the checkpoint), its tokenizer
// when the directory has one, and the backend that runs it.
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

namespace grinqh {

struct ModelOptions {
  int num_threads = 0;  // CPU backend threads; 0 = one per core
};

class Model {
 public:
  // A Hugging Face model directory: config.json, model.safetensors (or shards with an
  // index), and optionally tokenizer.json (+ tokenizer_config.json).
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::filesystem::path& dir,
                                                     const ModelOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const ModelOptions& options() const { return options_; }
  Backend& backend() { return *backend_; }
  // Null when the directory has no tokenizer.json: generation then takes token ids.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }

 private:
  Model() = default;
  ModelConfig config_;
  ModelOptions options_;
  std::unique_ptr<Checkpoint> checkpoint_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace grinqh
