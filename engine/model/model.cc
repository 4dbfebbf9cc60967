#include "engine/model/model.h"

#include "absl/strings/str_cat.h"
#include "engine/backends/cpu/cpu_backend.h"
#include "engine/base/status_macros.h"

namespace grinqh {

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::filesystem::path& dir,
                                                   const ModelOptions& options) {
  if (std::filesystem::is_regular_file(dir)) return LoadGrinqh(dir, options);
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("model ", dir.string(), " does not exist"));
  }
  std::unique_ptr<Model> model(new Model());
  model->options_ = options;
  GRINQH_ASSIGN_OR_RETURN(model->config_, ModelConfig::FromDirectory(dir));
  GRINQH_ASSIGN_OR_RETURN(model->checkpoint_, Checkpoint::Open(dir));
  const Checkpoint& checkpoint = *model->checkpoint_;
  GRINQH_ASSIGN_OR_RETURN(model->weights_,
                          LoadWeights([&](const std::string& name) { return checkpoint.Get(name); }, model->config_));
  if (std::filesystem::exists(dir / "tokenizer.json")) {
    GRINQH_ASSIGN_OR_RETURN(model->tokenizer_, Tokenizer::FromDirectory(dir));
  }
  GRINQH_ASSIGN_OR_RETURN(model->backend_, CpuBackend::Create(model->config_, model->weights_, options.num_threads));
  return model;
}

}  // namespace grinqh
