// Load generator for a running `grinqh serve`: N concurrent streams, each sending requests
// back to back, and the latency a client sees: time to first token (TTFT), time per output
// token (TPOT: the gaps between streamed tokens) and throughput, as JSON on stdout.
//
//   serve_load --server 127.0.0.1:50051 --concurrency 4 --requests 8 --max-tokens 128
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grinqh/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "server/flags.h"

namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

struct Samples {
  std::mutex mutex;
  std::vector<double> ttft, tpot, e2e;
  int64_t tokens = 0;
  int errors = 0;
};

// One request; its samples are added to `samples`.
void RunOne(grinqh::v1::InferenceService::Stub& stub, const grinqh::v1::GenerateRequest& request, Samples& samples) {
  grpc::ClientContext context;
  const auto start = Clock::now();
  auto reader = stub.Generate(&context, request);
  grinqh::v1::GenerateResponse response;
  std::vector<double> gaps;
  double ttft = -1;
  auto last = start;
  int64_t tokens = 0;
  while (reader->Read(&response)) {
    if (response.token_ids_size() == 0) continue;
    const auto now = Clock::now();
    if (ttft < 0) {
      ttft = std::chrono::duration<double>(now - start).count();
    } else {
      gaps.push_back(std::chrono::duration<double>(now - last).count() / response.token_ids_size());
    }
    last = now;
    tokens += response.token_ids_size();
  }
  const grpc::Status status = reader->Finish();
  std::lock_guard lock(samples.mutex);
  if (!status.ok()) {
    ++samples.errors;
    std::cerr << "request failed: " << status.error_message() << "\n";
    return;
  }
  samples.ttft.push_back(ttft);
  samples.tpot.insert(samples.tpot.end(), gaps.begin(), gaps.end());
  samples.e2e.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  samples.tokens += tokens;
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = grinqh::Flags::Parse(std::vector<std::string>(argv + 1, argv + argc),
                                    {"server", "concurrency", "requests", "max-tokens", "prompt", "tier"}, {});
  if (!flags.ok()) {
    std::cerr << flags.status().message() << "\n";
    return 2;
  }
  int concurrency = 1, requests = 4, max_tokens = 128;
  for (const auto& status : {flags->ReadInt("concurrency", 1, 4096, concurrency),
                             flags->ReadInt("requests", 1, 1 << 20, requests),
                             flags->ReadInt("max-tokens", 1, 1 << 20, max_tokens)}) {
    if (!status.ok()) {
      std::cerr << status.message() << "\n";
      return 2;
    }
  }
  const std::string server = flags->String("server").value_or("127.0.0.1:50051");
  auto stub = grinqh::v1::InferenceService::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));

  Samples samples;
  const auto start = Clock::now();
  std::vector<std::thread> streams;
  for (int s = 0; s < concurrency; ++s) {
    streams.emplace_back([&, s] {
      for (int r = 0; r < requests; ++r) {
        grinqh::v1::GenerateRequest request;
        // Distinct prompts, so no stream can profit from another's work.
        request.set_prompt(absl::StrCat(flags->String("prompt").value_or("def function"), "_", s, "_", r, "(x):"));
        request.set_max_tokens(static_cast<uint32_t>(max_tokens));
        if (auto tier = flags->String("tier")) request.set_tier(*tier);
        RunOne(*stub, request, samples);
      }
    });
  }
  for (auto& t : streams) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  const nlohmann::json result = {
      {"server", server},
      {"concurrency", concurrency},
      {"requests", concurrency * requests},
      {"errors", samples.errors},
      {"max_tokens", max_tokens},
      {"seconds", seconds},
      {"tokens", samples.tokens},
      {"throughput_tokens_per_second", static_cast<double>(samples.tokens) / seconds},
      {"ttft_p50_ms", 1e3 * Percentile(samples.ttft, 0.5)},
      {"ttft_p99_ms", 1e3 * Percentile(samples.ttft, 0.99)},
      {"tpot_p50_ms", 1e3 * Percentile(samples.tpot, 0.5)},
      {"tpot_p99_ms", 1e3 * Percentile(samples.tpot, 0.99)},
      {"e2e_p50_ms", 1e3 * Percentile(samples.e2e, 0.5)},
  };
  std::cout << result.dump() << std::endl;
  return samples.errors == 0 ? 0 : 1;
}
