// Runs the engine's sampling steps on cases read from stdin and writes what they give, for
// sampling_reference_test.py to compare with its own numpy implementation:
//   in:  [{"logits": [...], "prompt": [...], "output": [...], "params": {...}, "top_logprobs": N}, ...]
//   out: [{"processed": [...], "distribution": [[id, p], ...], "logprobs": {...}}, ...]
#include <iostream>
#include <vector>

#include "engine/serving/sampler.h"
#include "nlohmann/json.hpp"

int main() {
  using nlohmann::json;
  const json cases = json::parse(std::cin);
  json results = json::array();
  for (const json& c : cases) {
    std::vector<float> logits = c.at("logits");
    const std::vector<int32_t> prompt = c.at("prompt"), output = c.at("output");
    const json& p = c.at("params");
    grinqh::SamplingParams params{
        .temperature = p.value("temperature", 0.f), .top_k = p.value("top_k", 0), .top_p = p.value("top_p", 1.f),
        .seed = 0, .min_p = p.value("min_p", 0.f), .repetition_penalty = p.value("repetition_penalty", 1.f),
        .presence_penalty = p.value("presence_penalty", 0.f), .frequency_penalty = p.value("frequency_penalty", 0.f),
        .logit_bias = p.value("logit_bias", std::vector<std::pair<int32_t, float>>{})};
    if (const absl::Status status = params.Validate(); !status.ok()) {
      std::cerr << status << "\n";
      return 1;
    }
    grinqh::ProcessLogits(params, prompt, output, logits);
    const auto distribution = grinqh::Sampler(params).Distribution(logits);
    const grinqh::TokenLogprobs lp = grinqh::ComputeLogprobs(logits, distribution[0].first, c.value("top_logprobs", 0));
    results.push_back({{"processed", logits},
                       {"distribution", distribution},
                       {"logprobs", {{"token", lp.token}, {"logprob", lp.logprob}, {"top", lp.top}}}});
  }
  std::cout << results.dump() << "\n";
  return 0;
}
