#include "server/metrics.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/metrics_http.h"
#include "server/serving_metrics.h"

namespace grinqh::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, CountersAndGaugesWithLabels) {
  Registry registry;
  auto& requests = registry.AddCounter("app_requests_total", "Requests served.", {"method", "code"});
  requests.WithLabels({"get", "200"}).Increment();
  requests.WithLabels({"get", "200"}).Increment(2);
  requests.WithLabels({"post", "500"}).Increment(0.5);
  requests.WithLabels({"post", "500"}).Increment(-4);  // ignored: counters only go up
  registry.AddGauge("app_temperature_celsius", "Temperature.").Get().Set(-3.25);
  auto& queue = registry.AddGauge("app_queue_length", "Queue.", {"queue"});
  queue.WithLabels({"a"}).Set(5);
  queue.WithLabels({"a"}).Add(-2);
  registry.AddCounter("app_unused_total", "Never incremented, no labels: exposed at 0.");
  registry.AddCounter("app_empty_total", "Labelled, no children yet: not exposed.", {"x"});

  // Families sorted by name, children by label values.
  EXPECT_EQ(registry.Expose(),
            "# HELP app_queue_length Queue.\n"
            "# TYPE app_queue_length gauge\n"
            "app_queue_length{queue=\"a\"} 3\n"
            "# HELP app_requests_total Requests served.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{method=\"get\",code=\"200\"} 3\n"
            "app_requests_total{method=\"post\",code=\"500\"} 0.5\n"
            "# HELP app_temperature_celsius Temperature.\n"
            "# TYPE app_temperature_celsius gauge\n"
            "app_temperature_celsius -3.25\n"
            "# HELP app_unused_total Never incremented, no labels: exposed at 0.\n"
            "# TYPE app_unused_total counter\n"
            "app_unused_total 0\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry registry;
  auto& latency = registry.AddHistogram("app_latency_seconds", "Latency.", {"tier"}, {0.1, 0.5, 2});
  Histogram& fast = latency.WithLabels({"fast"});
  for (double v : {0.05, 0.1, 0.3, 0.3, 1.0, 7.0}) fast.Observe(v);  // 0.1 is on a bound: le="0.1"
  fast.Observe(std::nan(""));                                        // ignored

  EXPECT_EQ(registry.Expose(),
            "# HELP app_latency_seconds Latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{tier=\"fast\",le=\"0.1\"} 2\n"
            "app_latency_seconds_bucket{tier=\"fast\",le=\"0.5\"} 4\n"
            "app_latency_seconds_bucket{tier=\"fast\",le=\"2\"} 5\n"
            "app_latency_seconds_bucket{tier=\"fast\",le=\"+Inf\"} 6\n"
            "app_latency_seconds_sum{tier=\"fast\"} " +
                FormatValue(0.05 + 0.1 + 0.3 + 0.3 + 1.0 + 7.0) +
                "\n"
                "app_latency_seconds_count{tier=\"fast\"} 6\n");
}

TEST(MetricsTest, UnlabelledHistogramIsExposedEmpty) {
  Registry registry;
  registry.AddHistogram("app_size_bytes", "Sizes.", {}, {1024});
  EXPECT_EQ(registry.Expose(),
            "# HELP app_size_bytes Sizes.\n"
            "# TYPE app_size_bytes histogram\n"
            "app_size_bytes_bucket{le=\"1024\"} 0\n"
            "app_size_bytes_bucket{le=\"+Inf\"} 0\n"
            "app_size_bytes_sum 0\n"
            "app_size_bytes_count 0\n");
}

TEST(MetricsTest, EscapesHelpAndLabelValues) {
  EXPECT_EQ(EscapeHelp("a \\ b\nc \"quoted\""), "a \\\\ b\\nc \"quoted\"");
  EXPECT_EQ(EscapeLabelValue("a \\ b\nc \"quoted\""), "a \\\\ b\\nc \\\"quoted\\\"");

  Registry registry;
  registry.AddCounter("app_total", "Path C:\\tmp\nsecond line", {"tier"})
      .WithLabels({"say \"hi\"\\\n"})
      .Increment();
  EXPECT_EQ(registry.Expose(),
            "# HELP app_total Path C:\\\\tmp\\nsecond line\n"
            "# TYPE app_total counter\n"
            "app_total{tier=\"say \\\"hi\\\"\\\\\\n\"} 1\n");
}

TEST(MetricsTest, FormatsValuesAsPrometheusParsesThem) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(-1.5), "-1.5");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  for (double v : {0.1 + 0.2, 1e-9, 123456789.125, 1e300, 1.0 / 3}) {
    EXPECT_EQ(std::stod(FormatValue(v)), v) << FormatValue(v);  // round-trips exactly
  }
}

TEST(MetricsTest, CallbackGaugeIsReadAtScrapeTime) {
  Registry registry;
  double depth = 1;
  registry.AddCallbackGauge("app_depth", "Depth.", [&depth] { return depth; });
  EXPECT_THAT(registry.Expose(), HasSubstr("\napp_depth 1\n"));
  depth = 7;
  EXPECT_THAT(registry.Expose(), HasSubstr("\napp_depth 7\n"));
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  auto& counter = registry.AddCounter("app_events_total", "Events.", {"kind"});
  auto& histogram = registry.AddHistogram("app_value", "Values.", {"kind"}, {0.5});
  constexpr int kThreads = 8, kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string kind = t % 2 == 0 ? "even" : "odd";
      Counter& cached = counter.WithLabels({"cached"});
      for (int i = 0; i < kPerThread; ++i) {
        counter.WithLabels({kind}).Increment();  // looked up every time: the family's mutex
        cached.Increment();                      // the hot-path way: atomics only
        histogram.WithLabels({kind}).Observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 50; ++i) EXPECT_THAT(registry.Expose(), HasSubstr("# TYPE app_events_total counter"));
  });
  for (auto& thread : threads) thread.join();

  const double per_kind = kThreads / 2 * kPerThread;
  EXPECT_EQ(counter.WithLabels({"even"}).Value(), per_kind);
  EXPECT_EQ(counter.WithLabels({"odd"}).Value(), per_kind);
  EXPECT_EQ(counter.WithLabels({"cached"}).Value(), kThreads * kPerThread);
  const Histogram::Snapshot even = histogram.WithLabels({"even"}).Read();
  EXPECT_EQ(even.cumulative_counts, (std::vector<uint64_t>{uint64_t(per_kind / 2), uint64_t(per_kind)}));
  EXPECT_EQ(even.sum, per_kind / 2 * 0.25 + per_kind / 2 * 1.0);
}

using MetricsDeathTest = ::testing::Test;

TEST_F(MetricsDeathTest, RegistrationMistakesAbortNamingTheMetric) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry registry;
  registry.AddCounter("app_total", "x", {"a"});
  EXPECT_DEATH(registry.AddCounter("app_total", "x"), "app_total registered twice");
  EXPECT_DEATH(registry.AddGauge("9lives", "x"), "invalid metric name \"9lives\"");
  EXPECT_DEATH(registry.AddGauge("app-gauge", "x"), "invalid metric name");
  EXPECT_DEATH(registry.AddGauge("app_g", "x", {"__reserved"}), "app_g: invalid label name \"__reserved\"");
  EXPECT_DEATH(registry.AddGauge("app_g", "x", {"a", "a"}), "label \"a\" given twice");
  EXPECT_DEATH(registry.AddHistogram("app_h", "x", {"le"}, {1}), "may not have the label \"le\"");
  EXPECT_DEATH(registry.AddHistogram("app_h", "x", {}, {1, 1}), "strictly increasing");
  EXPECT_DEATH(registry.AddHistogram("app_h", "x", {}, {INFINITY}), "finite");
  registry.AddHistogram("app_h", "x", {}, {1});
  EXPECT_DEATH(registry.AddGauge("app_h_count", "x"), "app_h_count already exist");
  auto& family = registry.AddCounter("app_two_total", "x", {"a", "b"});
  EXPECT_DEATH(family.WithLabels({"only one"}), "app_two_total takes 2 label values \\(a,b\\), got 1");
}

}  // namespace
}  // namespace grinqh::metrics

namespace grinqh {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ServingMetricsTest, RecordsRequestsByTierAndCode) {
  ServingMetrics metrics({.version = "1.2.3", .tiers = {"fast", "quality"}}, [] {
    return ServingSnapshot{.queue_depth = 4,
                           .running_batch_size = 12,
                           .kv_cache_used_tokens = 3000,
                           .kv_cache_capacity_tokens = 65536,
                           .decode_effective_bit_width = 3.5};
  });
  // Before any request: a zero series per tier, so rate() has a start.
  EXPECT_THAT(metrics.Expose(), HasSubstr("grinqh_requests_total{tier=\"quality\",code=\"OK\"} 0\n"));

  metrics.RecordRequest({.tier = "fast",
                         .prompt_tokens = 10,
                         .completion_tokens = 5,
                         .time_to_first_token_s = 0.02,
                         .time_per_output_token_s = 0.003,
                         .duration_s = 0.032});
  metrics.RecordRequest({.tier = "fast",
                         .prompt_tokens = 8,
                         .completion_tokens = 1,
                         .time_to_first_token_s = 0.015,
                         .time_per_output_token_s = 0,
                         .duration_s = 0.015});
  metrics.RecordRequest({.tier = "quality", .code = absl::StatusCode::kInvalidArgument, .prompt_tokens = 3});
  metrics.RecordRequest({.tier = "made-up", .code = absl::StatusCode::kResourceExhausted});
  const std::string text = metrics.Expose();

  EXPECT_THAT(text, HasSubstr("grinqh_requests_total{tier=\"fast\",code=\"OK\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_requests_total{tier=\"quality\",code=\"INVALID_ARGUMENT\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_requests_total{tier=\"other\",code=\"RESOURCE_EXHAUSTED\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("made-up")));
  EXPECT_THAT(text, HasSubstr("grinqh_prompt_tokens_total{tier=\"fast\"} 18\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_prompt_tokens_total{tier=\"quality\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_generated_tokens_total{tier=\"fast\"} 6\n"));
  // Both fast requests produced tokens; only the first had a second token.
  EXPECT_THAT(text, HasSubstr("grinqh_time_to_first_token_seconds_count{tier=\"fast\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_time_to_first_token_seconds_bucket{tier=\"fast\",le=\"0.01\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_time_to_first_token_seconds_bucket{tier=\"fast\",le=\"0.025\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_time_per_output_token_seconds_count{tier=\"fast\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("grinqh_time_per_output_token_seconds_bucket{tier=\"fast\",le=\"0.0025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_time_per_output_token_seconds_bucket{tier=\"fast\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("grinqh_request_duration_seconds_count{tier=\"fast\"} 2\n"));
  // The rejected request produced no tokens: no latency observed.
  EXPECT_THAT(text, HasSubstr("grinqh_request_duration_seconds_count{tier=\"quality\"} 0\n"));

  EXPECT_THAT(text, HasSubstr("\ngrinqh_queue_depth 4\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_running_batch_size 12\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_kv_cache_used_tokens 3000\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_kv_cache_capacity_tokens 65536\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_decode_effective_bit_width 3.5\n"));
  EXPECT_THAT(text, HasSubstr("\ngrinqh_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_start_time_seconds gauge\n"));
}

TEST(ServingMetricsTest, GaugesReadZeroWithoutASnapshotSource) {
  ServingMetrics metrics({}, nullptr);
  EXPECT_THAT(metrics.Expose(), HasSubstr("\ngrinqh_queue_depth 0\n"));
  EXPECT_EQ(metrics.TierLabel("anything"), "other");
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
  metrics::Registry registry;
  registry.AddCounter("app_scrapes_total", "Test counter.", {"path"}).WithLabels({"/metrics"}).Increment(3);
  auto server = MetricsHttpServer::Start(registry, "127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);

  int status = 0;
  std::string content_type;
  EXPECT_EQ(Get(port, "/metrics", &status, &content_type), registry.Expose());
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
  metrics::Registry registry;
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
  metrics::Registry registry;
  for (int i = 0; i < 20; ++i) {
    auto server = MetricsHttpServer::Start(registry, "127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
  }  // each one is destroyed at once; a hang here fails by the test timeout
}

}  // namespace
}  // namespace grinqh
