#include "engine/model/model_files.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace grinqh {

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
  return model;
}

}  // namespace grinqh
