// What the server measures, as Prometheus metrics (prometheus-cpp families): requests by
// model, tier, status code and finish reason; latency histograms (time to first token, per
// output token, queue, prefill, decode, whole request) and token counters by model and tier;
// live gauges read from the scheduler at scrape time; the process' CPU and memory.
// Labelled series appear on first use, not pre-filled with zeros for every combination.
// Independent of the engine: the server fills ServingSnapshot from grinqh::SchedulerStats
// and RequestOutcome from the final event's Usage.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
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
  std::string model{};          // the served model's name: the `model` label
  // The tier label's values. Anything else is recorded as "other", so that requests naming
  // unknown tiers cannot grow the number of series without bound.
  std::vector<std::string> tiers;
};

// One finished request (successful, rejected, cancelled or failed).
struct RequestOutcome {
  std::string request_id{};  // for the request log; empty when refused before one was given
  std::string tier{};
  absl::StatusCode code = absl::StatusCode::kOk;  // gRPC's codes have the same numbers and names
  // The engine's ("length", "stop", "eos", "cancelled"); empty when the request never got
  // one (refused, or failed), recorded as "none".
  std::string finish_reason{};
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // The latency histograms describe requests that produced tokens (completion_tokens > 0);
  // time per output token those with a second token. Prefill time (time to first token -
  // queue time), decode time (duration - time to first token) and time per output token
  // (decode time / (completion_tokens - 1)) are derived from these.
  double queue_time_s = 0;           // arrival at the scheduler to admission into the batch
  double time_to_first_token_s = 0;  // arrival to the first generated token
  double duration_s = 0;             // arrival to the last message
  double effective_bits = 0;         // mean bits per weight the decode steps read
};

class ServingMetrics : public prometheus::Collectable {
 public:
  // `read_snapshot` is called on the scraping thread; empty reports zeros.
  ServingMetrics(ServingMetricsOptions options, std::function<ServingSnapshot()> read_snapshot);
  ServingMetrics(const ServingMetrics&) = delete;
  ServingMetrics& operator=(const ServingMetrics&) = delete;

  void RecordRequest(const RequestOutcome& outcome);

  // The tier label a request naming `tier` is recorded under.
  const std::string& TierLabel(const std::string& tier) const;

  // Every family: the registry's and the scrape-time ones.
  std::vector<prometheus::MetricFamily> Collect() const override;
  // The text exposition of Collect().
  std::string Expose() const { return metrics::ExposeText({this}); }

 private:
  prometheus::Registry registry_;
  metrics::ScrapeTimeMetrics scrape_time_;
  std::set<std::string> tiers_;  // the known tier labels, "other" included

  // A histogram family and its bucket bounds, which prometheus-cpp wants for every new series.
  struct HistogramFamily {
    prometheus::Family<prometheus::Histogram>& family;
    const std::vector<double>& buckets;
    void Observe(const prometheus::Labels& labels, double value) const;
  };

  prometheus::Family<prometheus::Counter>& AddCounter(const std::string& model, const std::string& name,
                                                      const std::string& help);
  HistogramFamily AddHistogram(const std::string& model, const std::string& name, const std::string& help,
                               const std::vector<double>& buckets);

  // Each labelled by model (a constant label) and tier; requests also by code and finish reason.
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& prompt_tokens_;
  prometheus::Family<prometheus::Counter>& generated_tokens_;
  HistogramFamily time_to_first_token_, time_per_output_token_, queue_time_, prefill_time_, decode_time_,
      duration_;
};

}  // namespace grinqh
