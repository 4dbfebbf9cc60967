#include "engine/serving/model.h"

#include "engine/base/status_macros.h"

namespace grinqh {

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::filesystem::path& path, const ModelOptions& options) {
  std::unique_ptr<Model> model(new Model());
  model->options_ = options;
  GRINQH_ASSIGN_OR_RETURN(model->files_, LoadModelFiles(path));
  GRINQH_ASSIGN_OR_RETURN(model->backend_, CreateBackend(model->files_->config, model->files_->weights, options));
  return model;
}

}  // namespace grinqh
