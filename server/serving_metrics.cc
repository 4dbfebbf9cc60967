#include "server/serving_metrics.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "prometheus/gauge.h"

namespace grinqh {
namespace {

const std::string kOtherTier = "other";
const std::string kNoFinishReason = "none";

// Buckets spanning what LLM serving sees: a first token (and its parts, queue and prefill)
// from milliseconds (short prompt, idle server) to a minute (long prompt behind a full queue);
// tokens every millisecond (GPU) to a second (CPU, large batch); whole requests (and their
// decode) up to ten minutes.
const std::vector<double> kTimeToFirstTokenBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                      1,     2.5,  5,     10,   20,  30,   60};
const std::vector<double> kTimePerOutputTokenBuckets = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06,
                                                        0.08,  0.1,    0.15,  0.25, 0.5,  1,    2.5};
const std::vector<double> kRequestDurationBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                     5,    10,    20,   30,  60,   120, 300, 600};

// Reads one field of the snapshot at scrape time.
template <typename Field>
std::function<double()> ReadField(std::function<ServingSnapshot()> read_snapshot, Field field) {
  return [read = std::move(read_snapshot), field] { return read ? double(read().*field) : 0.0; };
}

// A latency derived by subtraction can come out slightly negative from two clocks' rounding.
double NonNegative(double seconds) { return std::isfinite(seconds) ? std::max(seconds, 0.0) : 0.0; }

}  // namespace

// Request-level families carry the served model's name as a constant label: one server serves
// one model, and dashboards written for several servers can still tell them apart.
prometheus::Family<prometheus::Counter>& ServingMetrics::AddCounter(const std::string& model, const std::string& name,
                                                                   const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Labels({{"model", model}}).Register(registry_);
}

ServingMetrics::HistogramFamily ServingMetrics::AddHistogram(const std::string& model, const std::string& name,
                                                             const std::string& help,
                                                             const std::vector<double>& buckets) {
  return {prometheus::BuildHistogram().Name(name).Help(help).Labels({{"model", model}}).Register(registry_), buckets};
}

void ServingMetrics::HistogramFamily::Observe(const prometheus::Labels& labels, double value) const {
  family.Add(labels, buckets).Observe(NonNegative(value));
}

ServingMetrics::ServingMetrics(ServingMetricsOptions options, std::function<ServingSnapshot()> read_snapshot)
    : requests_(AddCounter(options.model, "grinqh_requests_total",
                           "Generate requests finished, by quality tier, gRPC status code and finish reason "
                           "(none: refused or failed before one).")),
      prompt_tokens_(AddCounter(options.model, "grinqh_prompt_tokens_total", "Prompt tokens of finished requests.")),
      generated_tokens_(
          AddCounter(options.model, "grinqh_generated_tokens_total", "Tokens generated for finished requests.")),
      time_to_first_token_(AddHistogram(options.model, "grinqh_time_to_first_token_seconds",
                                        "Time from a request's arrival to its first generated token.",
                                        kTimeToFirstTokenBuckets)),
      time_per_output_token_(AddHistogram(options.model, "grinqh_time_per_output_token_seconds",
                                          "Mean time between a request's generated tokens after the first.",
                                          kTimePerOutputTokenBuckets)),
      queue_time_(AddHistogram(options.model, "grinqh_request_queue_time_seconds",
                               "Time a request waited for a slot in the running batch.", kTimeToFirstTokenBuckets)),
      prefill_time_(AddHistogram(options.model, "grinqh_request_prefill_time_seconds",
                                 "Time from a request's admission into the batch to its first token (time to "
                                 "first token minus queue time).",
                                 kTimeToFirstTokenBuckets)),
      decode_time_(AddHistogram(options.model, "grinqh_request_decode_time_seconds",
                                "Time from a request's first token to its last message.", kRequestDurationBuckets)),
      duration_(AddHistogram(options.model, "grinqh_request_duration_seconds",
                             "Time from a request's arrival to its last message (end to end), for requests "
                             "that generated tokens.",
                             kRequestDurationBuckets)) {
  tiers_.insert(options.tiers.begin(), options.tiers.end());
  tiers_.insert(kOtherTier);

  scrape_time_.AddGauge("grinqh_queue_depth", "Requests waiting for a slot in the running batch.",
                        ReadField(read_snapshot, &ServingSnapshot::queue_depth));
  scrape_time_.AddGauge("grinqh_running_batch_size", "Sequences in the running batch.",
                        ReadField(read_snapshot, &ServingSnapshot::running_batch_size));
  scrape_time_.AddGauge("grinqh_kv_cache_used_tokens", "KV cache positions reserved by running sequences.",
                        ReadField(read_snapshot, &ServingSnapshot::kv_cache_used_tokens));
  scrape_time_.AddGauge("grinqh_kv_cache_capacity_tokens", "KV cache budget in positions.",
                        ReadField(read_snapshot, &ServingSnapshot::kv_cache_capacity_tokens));
  // Not "_bits": promtool's lint takes that for a unit and asks for bytes.
  scrape_time_.AddGauge("grinqh_decode_effective_bit_width",
                        "Mean bits per weight read by the last decode step (0 when none decoded).",
                        ReadField(read_snapshot, &ServingSnapshot::decode_effective_bit_width));
  metrics::AddProcessMetrics(scrape_time_);

  prometheus::BuildGauge()
      .Name("grinqh_build_info")
      .Help("Always 1; the labels say which build is running.")
      .Register(registry_)
      .Add({{"version", options.version}})
      .Set(1);
}

const std::string& ServingMetrics::TierLabel(const std::string& tier) const {
  auto it = tiers_.find(tier);
  return it != tiers_.end() ? *it : kOtherTier;
}

// Family::Add finds (or makes) each series under its family's mutex: a few lookups per
// finished request, never per token.
void ServingMetrics::RecordRequest(const RequestOutcome& outcome) {
  const prometheus::Labels by_tier = {{"tier", TierLabel(outcome.tier)}};
  std::string code = absl::StatusCodeToString(outcome.code);
  if (code.empty()) code = "UNKNOWN";  // a number outside the enum
  prometheus::Labels by_outcome = by_tier;
  by_outcome.emplace("code", std::move(code));
  by_outcome.emplace("finish_reason", outcome.finish_reason.empty() ? kNoFinishReason : outcome.finish_reason);
  requests_.Add(by_outcome).Increment();
  prompt_tokens_.Add(by_tier).Increment(double(outcome.prompt_tokens));
  generated_tokens_.Add(by_tier).Increment(double(outcome.completion_tokens));
  if (outcome.completion_tokens <= 0) return;

  const double decode_time = NonNegative(outcome.duration_s - outcome.time_to_first_token_s);
  time_to_first_token_.Observe(by_tier, outcome.time_to_first_token_s);
  queue_time_.Observe(by_tier, outcome.queue_time_s);
  prefill_time_.Observe(by_tier, outcome.time_to_first_token_s - outcome.queue_time_s);
  decode_time_.Observe(by_tier, decode_time);
  duration_.Observe(by_tier, outcome.duration_s);
  if (outcome.completion_tokens > 1) {
    time_per_output_token_.Observe(by_tier, decode_time / double(outcome.completion_tokens - 1));
  }
}

std::vector<prometheus::MetricFamily> ServingMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> families = registry_.Collect();
  for (prometheus::MetricFamily& family : scrape_time_.Collect()) families.push_back(std::move(family));
  return families;
}

}  // namespace grinqh
