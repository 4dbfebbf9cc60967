// Quality of a quantized model against its reference, per the protocol of
// docs/METHOD.md §3: perplexity of the next token, KL(reference ‖ candidate) of the
// next-token distributions, and how often the two argmaxes agree.
#pragma once

#include <cstdint>
#include <span>

#include "engine/backends/backend.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"

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

// Honest accounting (docs/METHOD.md §2.5): bits per weight = bytes × 8 / weights, over every
// quantized linear layer (the LM head included), everything the step reads counted.
struct BitsAccount {
  double bytes = 0;
  double weights = 0;
  double bits() const { return weights > 0 ? 8 * bytes / weights : 0; }
};

// A fixed-width method reading `bits` per weight and an fp16 scale and a byte zero per
// (row, group), as its .grinqh store holds them.
BitsAccount FixedWidthBits(ModelWeights weights, const ModelConfig& config, int bits, int group_size);

// What graded products read, from a Forward's stats (planes, and scales and zeros of every
// group read), plus the grading metadata each product reads: per input
// channel (`metadata_bytes_per_channel`: 2 for the fp16 channel_scale) and per layer
// (`metadata_bytes_per_product`: a schedule's two budgets around the target, 8 bytes; level
// thresholds, 4 bytes each, where an eval variant grades with them).
BitsAccount GradedReadBits(const ForwardStats& reads, int metadata_bytes_per_channel,
                           int metadata_bytes_per_product);

// What the nested layers of a model store: planes (tile padding included), scales, zeros,
// the grading metadata and the schedules, plus `extra_bytes` (a research grading rule's
// tables, QuantizedVariant::grading_table_bytes).
BitsAccount NestedFootprintBits(ModelWeights weights, const ModelConfig& config, size_t extra_bytes = 0);

}  // namespace grinqh
