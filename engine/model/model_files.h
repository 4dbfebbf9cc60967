// A model as stored, loaded: its config, its weights (views into the mapped checkpoint or
// .grinqh file), and its tokenizer when it has one. Data only: what runs it is a backend
// (engine/backends/), and engine/serving/model.h pairs the two.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/grinqh_file.h"
#include "engine/model/model_config.h"
#include "engine/model/safetensors.h"
#include "engine/model/weights.h"
#include "engine/tokenizer/tokenizer.h"

namespace grinqh {

struct ModelFiles {
  ModelConfig config;
  ModelWeights weights;                   // views into what is mapped below
  std::unique_ptr<Tokenizer> tokenizer;   // null when there is none: generation takes ids
  // GRINQH: the deepest level decode can read (the stored hierarchy's depth); 0 for a model
  // without nested weights, which decodes at full precision only.
  int max_decode_bits = 0;
  // GRINQH: input channels per scale and zero (0 for a model without nested weights).
  int group_size = 0;
  // What the weights view: a Hugging Face checkpoint, or a .grinqh file.
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<GrinqhFile> grinqh_file;
};

// A Hugging Face model directory (config.json, model.safetensors or shards with an index,
// optionally tokenizer.json + tokenizer_config.json), or a .grinqh file.
absl::StatusOr<std::unique_ptr<ModelFiles>> LoadModelFiles(const std::filesystem::path& path);
// What loading checks beyond each file on its own: the tokenizer's ids fit the model's
// vocabulary, and no tensor belongs to a layer past num_hidden_layers.
absl::Status CheckModelFiles(const ModelFiles& model, std::span<const std::string> tensor_names);
// The .grinqh path of LoadModelFiles (engine/model/grinqh_reader.cc).
absl::StatusOr<std::unique_ptr<ModelFiles>> LoadGrinqhFiles(const std::filesystem::path& path);

}  // namespace grinqh
