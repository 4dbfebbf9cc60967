// The `auto` tier's policy: the bits per weight that requests on an autoscaled tier decode at,
// chosen from the server's load, so that under pressure every step reads fewer bits (faster
// steps, more throughput) and at ease requests get full quality back.
//
// The rule, applied at every observation:
//   load     = (queued + running) / max_batch_size   (1.0 = the running batch is full;
//                                                      above 1 requests are waiting)
//   smoothed = smoothing * load + (1 - smoothing) * smoothed   (starts at 0: an idle server)
//   The levels are ordered by rising `load` threshold, the first at 0, each with fewer bits
//   than the one before. The current level steps DOWN (fewer bits) at once to the deepest
//   level whose threshold is <= smoothed, and steps back UP only past the level(s) whose
//   threshold - hysteresis is > smoothed. A level is entered at its threshold and left below
//   threshold - hysteresis, so a load that wanders around one threshold does not flap.
//
// Pure and single-threaded: no clock, no engine. The server samples SchedulerStats every
// `interval_seconds` on one thread, calls Observe, and publishes the result to request
// handlers (e.g. through a std::atomic<float>).
#pragma once

#include <cstddef>
#include <vector>

namespace grinqh {

// Decode bits meaning "the model's full stored depth", as GenerationRequest::decode_bits = 0.
inline constexpr float kFullDepthBits = 0.f;

struct AutoscalerLevel {
  double load = 0;                // smoothed load at which this level is entered
  float bits = kFullDepthBits;    // decode bits at this level; kFullDepthBits = full depth
  bool operator==(const AutoscalerLevel&) const = default;
};

struct AutoscalerConfig {
  double interval_seconds = 1.0;  // how often the server observes the load
  double smoothing = 0.5;         // weight of the newest observation, in (0, 1]; 1 = none
  double hysteresis = 0.1;        // load band below a threshold before stepping back up
  std::vector<AutoscalerLevel> levels = {
      {0.0, kFullDepthBits}, {0.5, 4.0f}, {0.9, 3.0f}, {1.5, 2.0f}};
  bool operator==(const AutoscalerConfig&) const = default;
};

// One sample of the scheduler's state (SchedulerStats::queued / running, and
// SchedulerOptions::max_batch_size).
struct LoadObservation {
  int queued = 0;
  int running = 0;
  int max_batch_size = 1;
};

class Autoscaler {
 public:
  // `config` must have passed CheckConfig (levels non-empty, first at load 0, thresholds
  // rising, bits falling); an empty level list always answers full depth.
  explicit Autoscaler(AutoscalerConfig config);

  // Takes one load sample; returns the bits autoscaled requests decode at from now on.
  float Observe(const LoadObservation& observation);

  float bits() const;                 // current decode bits (kFullDepthBits = full depth)
  size_t level() const { return level_; }  // index into config.levels
  double smoothed_load() const { return smoothed_load_; }

  // (queued + running) / max_batch_size, with negative counts read as 0 and a batch
  // size below 1 as 1.
  static double Load(const LoadObservation& observation);

 private:
  AutoscalerConfig config_;
  size_t level_ = 0;
  double smoothed_load_ = 0;
};

}  // namespace grinqh
