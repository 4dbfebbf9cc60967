// What the server measures, as Prometheus metrics: requests by tier and status code, latency
// histograms by tier, token counters, and live gauges read from the scheduler at scrape time.
// Independent of the engine: the server fills ServingSnapshot from grinqh::SchedulerStats.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "server/metrics.h"

namespace grinqh {

// The live state the gauges report, read once per gauge at every scrape.
struct ServingSnapshot {
  int64_t queue_depth = 0;         // requests waiting for a batch slot
  int64_t running_batch_size = 0;  // sequences in the running batch
  int64_t kv_cache_used_tokens = 0;
  int64_t kv_cache_capacity_tokens = 0;
  double decode_effective_bit_width = 0;  // mean bits per weight read by the last decode step
};

struct ServingMetricsOptions {
  std::string version = "dev";  // grinqh_build_info{version}
  // The tier label's values. Anything else is recorded as "other", so that requests naming
  // unknown tiers cannot grow the number of series without bound.
  std::vector<std::string> tiers;
};

// One finished request (successful, rejected, cancelled or failed).
struct RequestOutcome {
  std::string tier;
  absl::StatusCode code = absl::StatusCode::kOk;  // gRPC's codes have the same numbers and names
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // The latency histograms describe requests that produced tokens: time to first token and
  // duration are observed when completion_tokens > 0, time per output token when > 1.
  double time_to_first_token_s = 0;
  double time_per_output_token_s = 0;  // (duration - time to first token) / (completion - 1)
  double duration_s = 0;               // arrival to the last message
};

class ServingMetrics {
 public:
  // `read_snapshot` is called on the scraping thread; empty reports zeros.
  ServingMetrics(ServingMetricsOptions options, std::function<ServingSnapshot()> read_snapshot);
  ServingMetrics(const ServingMetrics&) = delete;
  ServingMetrics& operator=(const ServingMetrics&) = delete;

  void RecordRequest(const RequestOutcome& outcome);

  // The tier label a request naming `tier` is recorded under.
  const std::string& TierLabel(const std::string& tier) const;

  const metrics::Registry& registry() const { return registry_; }
  std::string Expose() const { return registry_.Expose(); }

 private:
  // Each tier's series, made at construction so they are exposed (at 0) from the start and
  // recording finds them without a lock.
  struct TierSeries {
    metrics::Counter* prompt_tokens;
    metrics::Counter* generated_tokens;
    metrics::Histogram* time_to_first_token;
    metrics::Histogram* time_per_output_token;
    metrics::Histogram* duration;
  };

  metrics::Registry registry_;
  metrics::Family<metrics::Counter>* requests_;
  std::unordered_map<std::string, TierSeries> tiers_;
};

}  // namespace grinqh
