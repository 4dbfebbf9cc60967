// A model ready to run: what was loaded from its files (engine/model/model_files.h) paired
// with the backend that runs it, chosen by name through the registry.
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "engine/backends/backend.h"
#include "engine/backends/registry.h"
#include "engine/model/model_files.h"

namespace grinqh {

// How to run a model: which backend (engine/backends/registry.h) and its resources.
using ModelOptions = BackendOptions;

class Model {
 public:
  // A Hugging Face model directory or a .grinqh file (LoadModelFiles), on the backend
  // `options.name` names.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::filesystem::path& path,
                                                     const ModelOptions& options = {});

  const ModelConfig& config() const { return files_->config; }
  const ModelWeights& weights() const { return files_->weights; }
  const ModelOptions& options() const { return options_; }
  Backend& backend() { return *backend_; }
  // Null when the model has no tokenizer.json: generation then takes token ids.
  const Tokenizer* tokenizer() const { return files_->tokenizer.get(); }
  // GRINQH: the deepest level decode can read; 0 for a model without nested weights,
  // which decodes at full precision only.
  int max_decode_bits() const { return files_->max_decode_bits; }
  // GRINQH: input channels per scale and zero (0 for a model without nested weights).
  int group_size() const { return files_->group_size; }

 private:
  Model() = default;
  ModelOptions options_;
  std::unique_ptr<ModelFiles> files_;
  std::unique_ptr<Backend> backend_;  // last: it views files_
};

}  // namespace grinqh
