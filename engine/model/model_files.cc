#include "engine/model/model_files.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace grinqh {

absl::Status CheckModelFiles(const ModelFiles& model, std::span<const std::string> tensor_names) {
  const ModelConfig& c = model.config;
  if (model.tokenizer != nullptr && model.tokenizer->vocab_size() > c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("the tokenizer has ids up to ", model.tokenizer->vocab_size() - 1,
                                                   ", outside the model's vocabulary (vocab_size ", c.vocab_size, ")"));
  }
  // A layer the config does not count would be silently dropped: refuse instead.
  constexpr std::string_view kLayerPrefix = "model.layers.";
  for (const std::string& name : tensor_names) {
    if (!name.starts_with(kLayerPrefix)) continue;
    int layer = 0;
    const std::string rest = name.substr(kLayerPrefix.size());
    if (absl::SimpleAtoi(rest.substr(0, rest.find('.')), &layer) && layer >= c.num_layers) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" belongs to layer ", layer,
                                                     ", but num_hidden_layers is ", c.num_layers));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ModelFiles>> LoadModelFiles(const std::filesystem::path& dir) {
  if (std::filesystem::is_regular_file(dir)) return LoadGrinqhFiles(dir);
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("model ", dir.string(), " does not exist"));
  }
  auto model = std::make_unique<ModelFiles>();
  GRINQH_ASSIGN_OR_RETURN(model->config, ModelConfig::FromDirectory(dir));
  GRINQH_ASSIGN_OR_RETURN(model->checkpoint, Checkpoint::Open(dir));
  const Checkpoint& checkpoint = *model->checkpoint;
  GRINQH_ASSIGN_OR_RETURN(model->weights,
                          LoadWeights([&](const std::string& name) { return checkpoint.Get(name); }, model->config));
  if (std::filesystem::exists(dir / "tokenizer.json")) {
    GRINQH_ASSIGN_OR_RETURN(model->tokenizer, Tokenizer::FromDirectory(dir));
  }
  GRINQH_RETURN_IF_ERROR(WithContext(CheckModelFiles(*model, checkpoint.Names()), dir.string()));
  return model;
}

}  // namespace grinqh
