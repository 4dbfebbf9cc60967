// Test-only: serves a ServingMetrics with a few requests recorded over several tiers and
// status codes, for prometheus_scrape_test.sh. Runs until SIGTERM or SIGINT, then exits 0.
//
// Usage: metrics_exposition_server [--port N] [--host H]
// With port 0 (the default) it picks a free port; either way it prints the bound port on a
// line of its own on stdout once it serves.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "server/metrics_http.h"
#include "server/serving_metrics.h"

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--host") {
      host = argv[i + 1];
    } else {
      std::fprintf(stderr, "unknown flag %s\nusage: %s [--port N] [--host H]\n", argv[i], argv[0]);
      return 2;
    }
  }

  // Block the stop signals before any thread starts, so that every thread inherits the mask
  // and sigwait below is the only one to receive them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const grinqh::ServingMetricsOptions options{
      .version = "test", .model = "tiny-llama3", .tiers = {"quality", "balanced", "fast"}};
  grinqh::ServingMetrics metrics(options, [] {
    return grinqh::ServingSnapshot{.queue_depth = 3,
                                   .running_batch_size = 16,
                                   .kv_cache_used_tokens = 12000,
                                   .kv_cache_capacity_tokens = 65536,
                                   .decode_effective_bit_width = 3.25};
  });
  // 7 requests in all (the CMake test checks the sum through Prometheus).
  for (int i = 0; i < 3; ++i) {
    metrics.RecordRequest({.tier = "quality",
                           .finish_reason = "length",
                           .prompt_tokens = 20,
                           .completion_tokens = 64,
                           .queue_time_s = 0.01 * i,
                           .time_to_first_token_s = 0.04 * (i + 1),
                           .duration_s = 0.8});
  }
  for (int i = 0; i < 2; ++i) {
    metrics.RecordRequest({.tier = "fast",
                           .finish_reason = "eos",
                           .prompt_tokens = 7,
                           .completion_tokens = 16,
                           .queue_time_s = 0.002,
                           .time_to_first_token_s = 0.01,
                           .duration_s = 0.07});
  }
  metrics.RecordRequest({.tier = "balanced", .code = absl::StatusCode::kInvalidArgument, .prompt_tokens = 0});
  metrics.RecordRequest(
      {.tier = "no such tier \"x\"\n", .code = absl::StatusCode::kResourceExhausted, .prompt_tokens = 5});

  auto server = grinqh::MetricsHttpServer::Start(metrics, host, port);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("%d\n", (*server)->port());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  (*server)->Stop();
  return 0;
}
