// Which backend runs a model: chosen by name, here and nowhere else.
//
//   cpu   the reference forward pass (engine/backends/cpu), always built
//   cuda  the GPU forward pass (engine/backends/cuda, to come), built when nvcc is found
//   auto  cuda when the build has it and a device is present, cpu otherwise
//
// Model::Load calls CreateBackend; the server only passes the configured name along.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backends/backend.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"

namespace grinqh {

struct BackendOptions {
  std::string name = "auto";  // cpu | cuda | auto
  int num_threads = 0;        // cpu: threads; 0 = one per core
  // Positions the KV pool holds, over all sequences; 0 = the model's context length
  // (enough for one sequence of full length).
  int64_t kv_cache_tokens = 0;
};

// The backends compiled into this build ("auto" included; "cuda" once it exists).
std::vector<std::string> BackendNames();
// The backends CreateBackend can make on this machine ("cpu", and "cuda" once it exists
// and a device is present): what tests run every backend-independent check against.
std::vector<std::string> AvailableBackends();

// OK when CreateBackend can make `name` here, before any model is loaded; otherwise the
// error CreateBackend would give.
absl::Status CheckBackend(const std::string& name);

// A backend over `weights`, which must outlive it. INVALID_ARGUMENT naming the backend when
// the name is unknown; FAILED_PRECONDITION when this build or machine cannot run it.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const ModelConfig& config, const ModelWeights& weights,
                                                       const BackendOptions& options);

}  // namespace grinqh
