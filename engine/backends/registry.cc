#include "engine/backends/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/backends/cpu/cpu_backend.h"

namespace grinqh {

// The CUDA backend is not written yet: "cuda" is a known name this build cannot make.
std::vector<std::string> BackendNames() { return {"auto", "cpu"}; }

std::vector<std::string> AvailableBackends() {
  std::vector<std::string> available;
  for (const std::string& name : BackendNames()) {
    if (name != "auto" && CheckBackend(name).ok()) available.push_back(name);
  }
  return available;
}

absl::Status CheckBackend(const std::string& name) {
  if (name == "cpu" || name == "auto") return absl::OkStatus();
  if (name == "cuda") {
    return absl::FailedPreconditionError("backend \"cuda\": this build has no CUDA backend yet; use cpu or auto");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("backend \"", name, "\" is not one of ", absl::StrJoin(BackendNames(), ", "), ", cuda"));
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const ModelConfig& config, const ModelWeights& weights,
                                                       const BackendOptions& options) {
  if (absl::Status s = CheckBackend(options.name); !s.ok()) return s;
  // No CUDA backend exists yet (it is the next piece of work), so auto is the CPU.
  auto cpu = CpuBackend::Create(config, weights, options.num_threads, options.kv_cache_tokens);
  if (!cpu.ok()) return cpu.status();
  return std::unique_ptr<Backend>(*std::move(cpu));
}

}  // namespace grinqh
