// server/metrics.h (the text exposition of prometheus-cpp families, scrape-time and process
// metrics), server/serving_metrics.h (the server's families) and the /metrics endpoint.
#include "server/metrics.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/metrics_http.h"
#include "server/serving_metrics.h"

namespace grinqh::metrics {
namespace {

using ::testing::HasSubstr;

TEST(ExposeTextTest, SortsFamiliesByNameAndLeavesOutFamiliesWithoutSeries) {
  prometheus::Registry registry;
  auto& requests = prometheus::BuildCounter().Name("app_requests_total").Help("Requests served.").Register(registry);
  requests.Add({{"method", "get"}, {"code", "200"}}).Increment(3);
  requests.Add({{"method", "post"}, {"code", "500"}}).Increment(0.5);
  requests.Add({{"method", "post"}, {"code", "500"}}).Increment(-4);  // ignored: counters only go up
  prometheus::BuildGauge().Name("app_queue_length").Help("Queue.").Register(registry).Add({}).Set(-3.25);
  prometheus::BuildCounter().Name("app_unused_total").Help("Labelled, no series yet.").Register(registry);
  ScrapeTimeMetrics scrape_time;
  scrape_time.AddGauge("app_depth", "Depth.", [] { return 7.0; });

  // Families sorted by name across both collectables; labels in name order, as
  // prometheus-cpp keeps them.
  const std::string text = ExposeText({&registry, &scrape_time});
  EXPECT_EQ(text,
            "# HELP app_depth Depth.\n"
            "# TYPE app_depth gauge\n"
            "app_depth 7\n"
            "# HELP app_queue_length Queue.\n"
            "# TYPE app_queue_length gauge\n"
            "app_queue_length -3.25\n"
            "# HELP app_requests_total Requests served.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{code=\"200\",method=\"get\"} 3\n"
            "app_requests_total{code=\"500\",method=\"post\"} 0.5\n")
      << text;
}

TEST(ExposeTextTest, HistogramBucketsAreCumulativeAndLabelValuesEscaped) {
  prometheus::Registry registry;
  auto& latency = prometheus::BuildHistogram().Name("app_latency_seconds").Help("Latency.").Register(registry);
  prometheus::Histogram& fast =
      latency.Add({{"tier", "say \"hi\"\\\n"}}, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 2});
  for (double v : {0.05, 0.1, 0.3, 0.3, 1.0, 7.0}) fast.Observe(v);  // 0.1 is on a bound: le="0.1"

  const std::string labels = "tier=\"say \\\"hi\\\"\\\\\\n\"";
  EXPECT_EQ(ExposeText({&registry}), "# HELP app_latency_seconds Latency.\n"
                                     "# TYPE app_latency_seconds histogram\n"
                                     "app_latency_seconds_count{" + labels + "} 6\n"
                                     "app_latency_seconds_sum{" + labels + "} 8.75\n"
                                     "app_latency_seconds_bucket{" + labels + ",le=\"0.1\"} 2\n"
                                     "app_latency_seconds_bucket{" + labels + ",le=\"0.5\"} 4\n"
                                     "app_latency_seconds_bucket{" + labels + ",le=\"2\"} 5\n"
                                     "app_latency_seconds_bucket{" + labels + ",le=\"+Inf\"} 6\n");
}

TEST(ScrapeTimeMetricsTest, ReadsAtEveryScrapeAndRefusesBadOrRepeatedNames) {
  ScrapeTimeMetrics metrics;
  double depth = 1;
  metrics.AddGauge("app_depth", "Depth.", [&depth] { return depth; });
  metrics.AddCounter("app_events_total", "Events.", [] { return 12.0; });
  metrics.AddGauge("app_unset", "No reader: 0.", nullptr);
  EXPECT_THAT(ExposeText({&metrics}), HasSubstr("\napp_depth 1\n"));
  depth = 7;
  const std::string text = ExposeText({&metrics});
  EXPECT_THAT(text, HasSubstr("\napp_depth 7\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE app_events_total counter\napp_events_total 12\n"));
  EXPECT_THAT(text, HasSubstr("\napp_unset 0\n"));

  EXPECT_THROW(metrics.AddGauge("app_depth", "Again.", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(metrics.AddGauge("9lives", "Bad name.", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(metrics.AddCounter("app-events", "Bad name.", [] { return 0.0; }), std::invalid_argument);
}

double ClockCpuSeconds() { return double(std::clock()) / CLOCKS_PER_SEC; }

TEST(ProcessMetricsTest, CpuSecondsFollowTheProcessCpuClock) {
  // Spin until the C library's own CPU clock has counted 0.2 s more; /proc/self/stat (in
  // clock ticks of 10 ms) must have counted the same, within two ticks.
  const double start = ClockCpuSeconds();
  volatile double sink = 0;
  while (ClockCpuSeconds() < start + 0.2) {
    for (int i = 0; i < 10000; ++i) sink = sink + std::sqrt(double(i));
  }
  const double clock_now = ClockCpuSeconds();
  const double proc_now = ProcessCpuSeconds();
  EXPECT_NEAR(proc_now, clock_now, 0.05);
  EXPECT_GE(proc_now, 0.15);
}

TEST(ProcessMetricsTest, ResidentMemoryGrowsWithTouchedPages) {
  const double before = ProcessResidentMemoryBytes();
  EXPECT_GT(before, 0);
  constexpr size_t kBytes = 64 << 20;
  auto block = std::make_unique<char[]>(kBytes);
  volatile char* bytes = block.get();                          // writes the compiler must keep
  for (size_t i = 0; i < kBytes; i += 4096) bytes[i] = 1;      // every page made resident
  const double after = ProcessResidentMemoryBytes();
  EXPECT_GE(after - before, 0.9 * kBytes) << before << " -> " << after;
}

TEST(ProcessMetricsTest, StartTimeIsBeforeNowAndThisProcessIsYoung) {
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = ProcessStartTimeSeconds();
  EXPECT_LE(start, now + 1);       // /proc counts in clock ticks: a tick of rounding
  EXPECT_GT(start, now - 3600);    // a test process started less than an hour ago
}

}  // namespace
}  // namespace grinqh::metrics

namespace grinqh {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The value of the sample line that starts with `series` followed by a space; NaN when none.
double Sample(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    if (line.starts_with(prefix)) return std::stod(line.substr(prefix.size()));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nan("");
}

ServingSnapshot TestSnapshot() {
  return ServingSnapshot{.queue_depth = 4,
                         .running_batch_size = 12,
                         .kv_cache_used_tokens = 3000,
                         .kv_cache_capacity_tokens = 65536,
                         .decode_effective_bit_width = 3.5};
}

TEST(ServingMetricsTest, RequestSeriesAppearOnFirstUse) {
  ServingMetrics metrics({.version = "1.2.3", .model = "tiny", .tiers = {"fast", "quality"}}, TestSnapshot);
  // Before any request: the gauges and the build, no request series at all (not a zero for
  // every tier, code and finish reason).
  std::string text = metrics.Expose();
  EXPECT_THAT(text, Not(HasSubstr("grinqh_requests_total")));
  EXPECT_THAT(text, Not(HasSubstr("grinqh_time_to_first_token_seconds")));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_queue_depth 4\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_build_info{version=\"1.2.3\"} 1\n"));

  metrics.RecordRequest({.tier = "fast", .finish_reason = "length", .prompt_tokens = 3, .completion_tokens = 2,
                         .time_to_first_token_s = 0.02, .duration_s = 0.03});
  text = metrics.Expose();
  // Only the combination used exists; the other tier has no series yet.
  EXPECT_THAT(text, HasSubstr("grinqh_requests_total{model=\"tiny\",code=\"OK\",finish_reason=\"length\","
                              "tier=\"fast\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("tier=\"quality\"")));
  EXPECT_THAT(text, Not(HasSubstr("finish_reason=\"stop\"")));
}

TEST(ServingMetricsTest, RecordsRequestsByModelTierCodeAndFinishReason) {
  ServingMetrics metrics({.version = "1.2.3", .model = "tiny", .tiers = {"fast", "quality"}}, TestSnapshot);
  metrics.RecordRequest({.tier = "fast",
                         .finish_reason = "length",
                         .prompt_tokens = 10,
                         .completion_tokens = 5,
                         .queue_time_s = 0.004,
                         .time_to_first_token_s = 0.02,
                         .duration_s = 0.032});
  metrics.RecordRequest({.tier = "fast",
                         .finish_reason = "eos",
                         .prompt_tokens = 8,
                         .completion_tokens = 1,
                         .queue_time_s = 0.001,
                         .time_to_first_token_s = 0.015,
                         .duration_s = 0.015});
  metrics.RecordRequest({.tier = "quality", .code = absl::StatusCode::kInvalidArgument, .prompt_tokens = 3});
  metrics.RecordRequest({.tier = "made-up", .code = absl::StatusCode::kResourceExhausted});
  const std::string text = metrics.Expose();

  const auto series = [](const std::string& name, const std::string& labels) {
    return absl::StrCat(name, "{model=\"tiny\",", labels, "}");
  };
  const auto requests = [&](const std::string& labels) {
    return Sample(text, series("grinqh_requests_total", labels));
  };
  EXPECT_EQ(requests("code=\"OK\",finish_reason=\"length\",tier=\"fast\""), 1);
  EXPECT_EQ(requests("code=\"OK\",finish_reason=\"eos\",tier=\"fast\""), 1);
  // Refused requests never got a finish reason.
  EXPECT_EQ(requests("code=\"INVALID_ARGUMENT\",finish_reason=\"none\",tier=\"quality\""), 1);
  EXPECT_EQ(requests("code=\"RESOURCE_EXHAUSTED\",finish_reason=\"none\",tier=\"other\""), 1);
  EXPECT_THAT(text, Not(HasSubstr("made-up")));
  EXPECT_EQ(Sample(text, series("grinqh_prompt_tokens_total", "tier=\"fast\"")), 18);
  EXPECT_EQ(Sample(text, series("grinqh_prompt_tokens_total", "tier=\"quality\"")), 3);
  EXPECT_EQ(Sample(text, series("grinqh_generated_tokens_total", "tier=\"fast\"")), 6);

  // Both fast requests produced tokens; only the first had a second token. Per histogram of
  // the fast tier: count, sum, and cumulative counts at some bounds.
  struct Expected {
    std::string histogram;
    double count, sum;
    std::vector<std::pair<std::string, double>> buckets;  // le, cumulative count
  };
  const std::vector<Expected> expected = {
      {"grinqh_time_to_first_token_seconds", 2, 0.02 + 0.015, {{"0.01", 0}, {"0.025", 2}}},
      // (0.032 - 0.02) / (5 - 1)
      {"grinqh_time_per_output_token_seconds", 1, 0.003, {{"0.0025", 0}, {"0.005", 1}}},
      // as the engine reported it
      {"grinqh_request_queue_time_seconds", 2, 0.004 + 0.001, {{"0.005", 2}}},
      // time to first token - queue time: 0.016 and 0.014
      {"grinqh_request_prefill_time_seconds", 2, 0.030, {{"0.01", 0}, {"0.025", 2}}},
      // duration - time to first token: 0.012 and 0 (a single token)
      {"grinqh_request_decode_time_seconds", 2, 0.012, {{"0.01", 1}, {"0.025", 2}}},
      {"grinqh_request_duration_seconds", 2, 0.032 + 0.015, {{"0.01", 0}, {"0.025", 1}, {"0.05", 2}}},
  };
  for (const Expected& e : expected) {
    EXPECT_EQ(Sample(text, series(e.histogram + "_count", "tier=\"fast\"")), e.count) << e.histogram;
    EXPECT_NEAR(Sample(text, series(e.histogram + "_sum", "tier=\"fast\"")), e.sum, 1e-12) << e.histogram;
    for (const auto& [le, cumulative] : e.buckets) {
      EXPECT_EQ(Sample(text, series(e.histogram + "_bucket", absl::StrCat("tier=\"fast\",le=\"", le, "\""))),
                cumulative)
          << e.histogram << " le=" << le;
    }
  }
  // The refused request produced no tokens: no latency observed, so no latency series.
  EXPECT_THAT(text, Not(HasSubstr("grinqh_request_duration_seconds_count{model=\"tiny\",tier=\"quality\"}")));

  EXPECT_THAT(text, HasSubstr("\ngrinqh_queue_depth 4\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_running_batch_size 12\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_kv_cache_used_tokens 3000\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_kv_cache_capacity_tokens 65536\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_decode_effective_bit_width 3.5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 0);
  EXPECT_GT(Sample(text, "process_start_time_seconds"), 0);
}

TEST(ServingMetricsTest, HelpTextsNeedNoEscaping) {
  // prometheus-cpp 1.0.1 writes HELP text as given: a backslash or newline would break the
  // exposition, so none of ours may have one.
  ServingMetrics metrics({.model = "m", .tiers = {"fast"}}, nullptr);
  metrics.RecordRequest({.tier = "fast", .completion_tokens = 2, .time_to_first_token_s = 0.1, .duration_s = 0.2});
  const std::vector<prometheus::MetricFamily> families = metrics.Collect();
  EXPECT_EQ(families.size(), 18u);  // 9 request-level, build info, 5 live gauges, 3 of the process
  for (const prometheus::MetricFamily& family : families) {
    EXPECT_FALSE(family.help.empty()) << family.name;
    EXPECT_EQ(family.help.find_first_of("\\\n"), std::string::npos) << family.name;
  }
}

TEST(ServingMetricsTest, DerivedLatenciesNeverGoNegative) {
  ServingMetrics metrics({.model = "m", .tiers = {"fast"}}, nullptr);
  // The engine's clocks and the service's round differently: a queue time a hair over the
  // time to first token, or a duration a hair under it, counts as zero, not negative.
  metrics.RecordRequest({.tier = "fast", .completion_tokens = 3, .queue_time_s = 0.0101,
                         .time_to_first_token_s = 0.01, .duration_s = 0.0099});
  const std::string text = metrics.Expose();
  EXPECT_EQ(Sample(text, "grinqh_request_prefill_time_seconds_sum{model=\"m\",tier=\"fast\"}"), 0);
  EXPECT_EQ(Sample(text, "grinqh_request_decode_time_seconds_sum{model=\"m\",tier=\"fast\"}"), 0);
  EXPECT_EQ(Sample(text, "grinqh_time_per_output_token_seconds_sum{model=\"m\",tier=\"fast\"}"), 0);
}

TEST(ServingMetricsTest, GaugesReadZeroWithoutASnapshotSource) {
  ServingMetrics metrics({}, nullptr);
  EXPECT_THAT(metrics.Expose(), HasSubstr("\ngrinqh_queue_depth 0\n"));
  EXPECT_EQ(metrics.TierLabel("anything"), "other");
}

TEST(ServingMetricsTest, ConcurrentRequestsAreAllCounted) {
  // Series made on first use from many threads at once, while scrapes run.
  ServingMetrics metrics({.model = "m", .tiers = {"a", "b"}}, nullptr);
  constexpr int kThreads = 8, kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.RecordRequest({.tier = t % 2 == 0 ? "a" : "b", .finish_reason = i % 2 == 0 ? "stop" : "length",
                               .completion_tokens = 2, .time_to_first_token_s = 0.01, .duration_s = 0.02});
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 50; ++i) EXPECT_THAT(metrics.Expose(), HasSubstr("# TYPE grinqh_queue_depth gauge"));
  });
  for (auto& thread : threads) thread.join();

  const std::string text = metrics.Expose();
  const double per_tier_and_reason = kThreads / 2 * kPerThread / 2;
  EXPECT_EQ(Sample(text, "grinqh_requests_total{model=\"m\",code=\"OK\",finish_reason=\"stop\",tier=\"a\"}"),
            per_tier_and_reason);
  EXPECT_EQ(Sample(text, "grinqh_requests_total{model=\"m\",code=\"OK\",finish_reason=\"length\",tier=\"b\"}"),
            per_tier_and_reason);
  EXPECT_EQ(Sample(text, "grinqh_request_duration_seconds_count{model=\"m\",tier=\"a\"}"),
            kThreads / 2 * kPerThread);
  EXPECT_EQ(Sample(text, "grinqh_generated_tokens_total{model=\"m\",tier=\"b\"}"), kThreads * kPerThread);
}

std::string Get(int port, const std::string& path, int* status, std::string* content_type) {
  httplib::Client client("127.0.0.1", port);
  auto result = client.Get(path.c_str());
  if (!result) {
    *status = -1;
    return "";
  }
  *status = result->status;
  *content_type = result->get_header_value("Content-Type");
  return result->body;
}

TEST(MetricsHttpServerTest, ServesMetricsAnd404Elsewhere) {
  prometheus::Registry registry;
  prometheus::BuildCounter().Name("app_scrapes_total").Help("Test counter.").Register(registry)
      .Add({{"path", "/metrics"}})
      .Increment(3);
  auto server = MetricsHttpServer::Start(registry, "127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);

  int status = 0;
  std::string content_type;
  EXPECT_EQ(Get(port, "/metrics", &status, &content_type), metrics::ExposeText({&registry}));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(content_type, "text/plain; version=0.0.4; charset=utf-8");

  Get(port, "/", &status, &content_type);
  EXPECT_EQ(status, 404);
  Get(port, "/metrics/extra", &status, &content_type);
  EXPECT_EQ(status, 404);

  (*server)->Stop();
  (*server)->Stop();  // idempotent
  Get(port, "/metrics", &status, &content_type);
  EXPECT_EQ(status, -1);  // nothing listens any more
}

TEST(MetricsHttpServerTest, BindFailureNamesHostAndPort) {
  prometheus::Registry registry;
  auto first = MetricsHttpServer::Start(registry, "127.0.0.1", 0);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->port();
  auto second = MetricsHttpServer::Start(registry, "127.0.0.1", port);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("127.0.0.1:" + std::to_string(port)));

  auto bad_host = MetricsHttpServer::Start(registry, "no-such-host.invalid", 0);
  ASSERT_FALSE(bad_host.ok());
  EXPECT_THAT(std::string(bad_host.status().message()), HasSubstr("no-such-host.invalid:0"));
}

TEST(MetricsHttpServerTest, DestructorStopsAServerThatNeverServed) {
  prometheus::Registry registry;
  for (int i = 0; i < 20; ++i) {
    auto server = MetricsHttpServer::Start(registry, "127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
  }  // each one is destroyed at once; a hang here fails by the test timeout
}

}  // namespace
}  // namespace grinqh
