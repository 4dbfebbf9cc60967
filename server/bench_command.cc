// `grinqh bench`: prefill and decode speed of a model on this machine's backend.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/serving/model.h"
#include "engine/serving/sampler.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/commands.h"
#include "server/flags.h"

namespace grinqh {
namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

absl::Status RunBench(const Flags& flags) {
  if (!flags.Has("model")) return absl::InvalidArgumentError("--model is required");
  int prompt_tokens = 128, decode_tokens = 128, repeat = 5;
  ModelOptions options;
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("prompt-tokens", 1, 1 << 20, prompt_tokens));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("decode-tokens", 1, 1 << 20, decode_tokens));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("repeat", 1, 1000, repeat));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("threads", 0, 1024, options.num_threads));
  if (auto backend = flags.String("backend")) options.name = *backend;
  float decode_bits = 0.f;  // GRINQH models: graded decode target; 0 = full depth
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("bits", decode_bits));
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(*flags.String("model"), options));
  const ModelConfig& config = model->config();
  if (decode_bits != 0.f && !(decode_bits > 0.f && decode_bits <= static_cast<float>(model->max_decode_bits()))) {
    return absl::InvalidArgumentError(absl::StrCat("--bits ", decode_bits, " is outside this model's range (0, ",
                                                   model->max_decode_bits(), "]"));
  }
  if (prompt_tokens + decode_tokens > config.max_position_embeddings) {
    return absl::InvalidArgumentError("--prompt-tokens + --decode-tokens exceed the model's context length");
  }

  // Random prompt ids: speed does not depend on which tokens they are.
  std::mt19937 rng(1);
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(config.vocab_size));

  using Clock = std::chrono::steady_clock;
  std::vector<double> prefill_tps, decode_tps;
  Backend& backend = model->backend();
  for (int r = 0; r <= repeat; ++r) {  // run 0 warms caches and is not counted
    auto cache = backend.NewCache();
    std::vector<float> logits;
    Sampler sampler({});
    ForwardItem item{cache.get(), prompt, Logits::kLast};
    const auto t0 = Clock::now();
    GRINQH_RETURN_IF_ERROR(backend.Forward({&item, 1}, logits));
    const auto t1 = Clock::now();
    for (int i = 0; i < decode_tokens; ++i) {
      const int32_t token = sampler.Sample(logits);
      item = ForwardItem{cache.get(), {&token, 1}, Logits::kLast, decode_bits};
      GRINQH_RETURN_IF_ERROR(backend.Forward({&item, 1}, logits));
    }
    const auto t2 = Clock::now();
    if (r == 0) continue;
    prefill_tps.push_back(prompt_tokens / std::chrono::duration<double>(t1 - t0).count());
    decode_tps.push_back(decode_tokens / std::chrono::duration<double>(t2 - t1).count());
  }

  const double decode = Median(decode_tps), prefill = Median(prefill_tps);
  const double bytes = static_cast<double>(model->weights().DecodeBytes(decode_bits));
  if (flags.Has("json")) {
    std::cout << nlohmann::json{{"prompt_tokens", prompt_tokens}, {"decode_tokens", decode_tokens}, {"decode_bits", decode_bits},
                                {"repeat", repeat}, {"prefill_tokens_per_second", prefill},
                                {"decode_tokens_per_second", decode}, {"decode_weight_bytes", bytes},
                                {"decode_weight_gb_per_second", bytes * decode / 1e9}}
                     .dump()
              << std::endl;
  } else {
    std::cout << absl::StrFormat(
        "prefill: %.0f tokens/s (%d-token prompt)\ndecode:  %.1f tokens/s (%d tokens; %.1f MB of weights per "
        "token = %.1f GB/s)\nmedian of %d runs\n",
        prefill, prompt_tokens, decode, decode_tokens, bytes / 1e6, bytes * decode / 1e9, repeat);
  }
  return absl::OkStatus();
}

}  // namespace

const Command& BenchCommand() {
  static const Command command{{"bench", "prefill and decode speed",
                                {kModelFlag,
                                 {"prompt-tokens", "N", "prompt length (128)"},
                                 {"decode-tokens", "N", "tokens decoded per run (128)"},
                                 {"repeat", "N", "runs; the median is reported (5)"},
                                 kThreadsFlag,
                                 kBackendFlag,
                                 kDecodeBitsFlag,
                                 {"json", "", "print the results as JSON"}}},
                               RunBench};
  return command;
}

}  // namespace grinqh
