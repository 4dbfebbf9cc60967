#include "server/serving_metrics.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"

namespace grinqh {
namespace {

const std::string kOtherTier = "other";

// Buckets spanning what LLM serving sees: a first token from milliseconds (short prompt, idle
// server) to a minute (long prompt behind a full queue); tokens every millisecond (GPU) to a
// second (CPU, large batch); whole requests up to ten minutes.
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

}  // namespace

ServingMetrics::ServingMetrics(ServingMetricsOptions options,
                               std::function<ServingSnapshot()> read_snapshot) {
  requests_ = &registry_.AddCounter("grinqh_requests_total",
                                    "Generate requests finished, by quality tier and gRPC status code.",
                                    {"tier", "code"});
  auto& prompt_tokens =
      registry_.AddCounter("grinqh_prompt_tokens_total", "Prompt tokens of finished requests.", {"tier"});
  auto& generated_tokens = registry_.AddCounter("grinqh_generated_tokens_total",
                                                "Tokens generated for finished requests.", {"tier"});
  auto& time_to_first_token = registry_.AddHistogram(
      "grinqh_time_to_first_token_seconds", "Time from a request's arrival to its first generated token.",
      {"tier"}, kTimeToFirstTokenBuckets);
  auto& time_per_output_token =
      registry_.AddHistogram("grinqh_time_per_output_token_seconds",
                             "Mean time between a request's generated tokens after the first.", {"tier"},
                             kTimePerOutputTokenBuckets);
  auto& duration = registry_.AddHistogram("grinqh_request_duration_seconds",
                                          "Time from a request's arrival to its last message (end to end), "
                                          "for requests that generated tokens.",
                                          {"tier"}, kRequestDurationBuckets);

  std::vector<std::string> tiers = std::move(options.tiers);
  tiers.push_back(kOtherTier);
  for (const std::string& tier : tiers) {
    if (tiers_.count(tier) > 0) continue;
    tiers_.emplace(tier, TierSeries{&prompt_tokens.WithLabels({tier}), &generated_tokens.WithLabels({tier}),
                                    &time_to_first_token.WithLabels({tier}),
                                    &time_per_output_token.WithLabels({tier}), &duration.WithLabels({tier})});
    // So that grinqh_requests_total has a series per tier before the first request.
    requests_->WithLabels({tier, absl::StatusCodeToString(absl::StatusCode::kOk)});
  }

  registry_.AddCallbackGauge("grinqh_queue_depth", "Requests waiting for a slot in the running batch.",
                             ReadField(read_snapshot, &ServingSnapshot::queue_depth));
  registry_.AddCallbackGauge("grinqh_running_batch_size", "Sequences in the running batch.",
                             ReadField(read_snapshot, &ServingSnapshot::running_batch_size));
  registry_.AddCallbackGauge("grinqh_kv_cache_used_tokens",
                             "KV cache positions reserved by running sequences.",
                             ReadField(read_snapshot, &ServingSnapshot::kv_cache_used_tokens));
  registry_.AddCallbackGauge("grinqh_kv_cache_capacity_tokens", "KV cache budget in positions.",
                             ReadField(read_snapshot, &ServingSnapshot::kv_cache_capacity_tokens));
  // Not "_bits": promtool's lint takes that for a unit and asks for bytes.
  registry_.AddCallbackGauge("grinqh_decode_effective_bit_width",
                             "Mean bits per weight read by the last decode step (0 when none decoded).",
                             ReadField(read_snapshot, &ServingSnapshot::decode_effective_bit_width));

  registry_.AddGauge("grinqh_build_info", "Always 1; the labels say which build is running.", {"version"})
      .WithLabels({options.version})
      .Set(1);
  const double start_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  registry_
      .AddGauge("process_start_time_seconds", "When the server started, in seconds since the Unix epoch.")
      .Get()
      .Set(start_time);
}

const std::string& ServingMetrics::TierLabel(const std::string& tier) const {
  auto it = tiers_.find(tier);
  return it != tiers_.end() ? it->first : kOtherTier;
}

void ServingMetrics::RecordRequest(const RequestOutcome& outcome) {
  const std::string& tier = TierLabel(outcome.tier);
  const TierSeries& series = tiers_.at(tier);
  std::string code = absl::StatusCodeToString(outcome.code);
  if (code.empty()) code = "UNKNOWN";  // a number outside the enum
  requests_->WithLabels({tier, std::move(code)}).Increment();
  series.prompt_tokens->Increment(double(outcome.prompt_tokens));
  series.generated_tokens->Increment(double(outcome.completion_tokens));
  if (outcome.completion_tokens > 0) {
    series.time_to_first_token->Observe(outcome.time_to_first_token_s);
    series.duration->Observe(outcome.duration_s);
  }
  if (outcome.completion_tokens > 1) series.time_per_output_token->Observe(outcome.time_per_output_token_s);
}

}  // namespace grinqh
