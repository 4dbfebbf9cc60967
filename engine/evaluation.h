// Quality of a quantized model against its reference, per the protocol of
// ../shared/DESIGN.md §3: perplexity of the next token, KL(reference ‖ candidate) of the
// next-token distributions, and how often the two argmaxes agree.
#pragma once

#include <cstdint>
#include <span>

namespace grinqh {

struct EvalStats {
  double nll_sum = 0;        // −log p(next token), candidate model
  double kld_sum = 0;
  int64_t top1_agree = 0;
  int64_t predictions = 0;   // positions with a next token (PPL)
  int64_t positions = 0;     // positions compared (KLD, top-1)

  double ppl() const;
  double kld() const;
  double top1() const;
};

// Scores one window: `reference` and `candidate` are logits [tokens.size() × vocab] of the
// same window. Every position counts for KLD and top-1; all but the last for perplexity.
void ScoreWindow(std::span<const float> reference, std::span<const float> candidate,
                 std::span<const int32_t> tokens, int vocab, EvalStats& stats);

}  // namespace grinqh
