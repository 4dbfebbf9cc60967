#include "server/autoscaler.h"

#include <algorithm>
#include <utility>

namespace grinqh {

Autoscaler::Autoscaler(AutoscalerConfig config) : config_(std::move(config)) {}

double Autoscaler::Load(const LoadObservation& observation) {
  const int waiting_or_running = std::max(observation.queued, 0) + std::max(observation.running, 0);
  return static_cast<double>(waiting_or_running) / std::max(observation.max_batch_size, 1);
}

float Autoscaler::Observe(const LoadObservation& observation) {
  const std::vector<AutoscalerLevel>& levels = config_.levels;
  if (levels.empty()) return kFullDepthBits;
  smoothed_load_ = config_.smoothing * Load(observation) + (1 - config_.smoothing) * smoothed_load_;

  // Down: the deepest level already reached.
  while (level_ + 1 < levels.size() && levels[level_ + 1].load <= smoothed_load_) ++level_;
  // Up: leave each level only once the load is clearly (by the hysteresis) below its threshold.
  while (level_ > 0 && smoothed_load_ < levels[level_].load - config_.hysteresis) --level_;
  return bits();
}

float Autoscaler::bits() const { return config_.levels.empty() ? kFullDepthBits : config_.levels[level_].bits; }

}  // namespace grinqh
