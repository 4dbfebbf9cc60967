#include "engine/calibration/evaluation.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace grinqh {
namespace {

// log-softmax in double, for sums over 65k positions that stay exact enough.
void LogSoftmax(const float* logits, int vocab, std::vector<double>& out) {
  out.resize(static_cast<size_t>(vocab));
  const double max_logit = *std::max_element(logits, logits + vocab);
  double total = 0;
  for (int i = 0; i < vocab; ++i) total += std::exp(logits[i] - max_logit);
  const double log_total = std::log(total) + max_logit;
  for (int i = 0; i < vocab; ++i) out[static_cast<size_t>(i)] = logits[i] - log_total;
}

}  // namespace

double EvalStats::ppl() const { return std::exp(nll_sum / static_cast<double>(predictions)); }
double EvalStats::kld() const { return kld_sum / static_cast<double>(positions); }
double EvalStats::top1() const { return static_cast<double>(top1_agree) / static_cast<double>(positions); }

void ScoreWindow(std::span<const float> reference, std::span<const float> candidate,
                 std::span<const int32_t> tokens, int vocab, EvalStats& stats) {
  std::vector<double> log_p, log_q;
  const size_t v = static_cast<size_t>(vocab);
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    const float* ref = reference.data() + pos * v;
    const float* cand = candidate.data() + pos * v;
    LogSoftmax(ref, vocab, log_p);
    LogSoftmax(cand, vocab, log_q);
    double kld = 0;
    for (size_t i = 0; i < v; ++i) kld += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
    stats.kld_sum += kld;
    stats.top1_agree += (std::max_element(ref, ref + vocab) - ref) == (std::max_element(cand, cand + vocab) - cand);
    ++stats.positions;
    if (pos + 1 < tokens.size()) {
      stats.nll_sum -= log_q[static_cast<size_t>(tokens[pos + 1])];
      ++stats.predictions;
    }
  }
}

BitsAccount FixedWidthBits(ModelWeights weights, const ModelConfig& config, int bits, int group_size) {
  BitsAccount a;
  for (const LinearLayerRef& l : LinearLayers(weights, config)) {
    const double rows = l.weights->rows(), cols = l.weights->cols();
    const double groups = std::ceil(cols / group_size);
    a.weights += rows * cols;
    a.bytes += rows * cols * bits / 8 + rows * groups * kGroupParamBytes;
  }
  return a;
}

BitsAccount GradedReadBits(const ForwardStats& reads, int metadata_bytes_per_channel,
                           int metadata_bytes_per_product) {
  return {double(reads.weight_bytes) + double(reads.graded_channels) * metadata_bytes_per_channel +
              double(reads.graded_products) * metadata_bytes_per_product,
          double(reads.weights)};
}

BitsAccount NestedFootprintBits(ModelWeights weights, const ModelConfig& config, size_t extra_bytes) {
  BitsAccount a;
  a.bytes = double(extra_bytes);
  for (const LinearLayerRef& l : LinearLayers(weights, config)) {
    a.weights += double(l.weights->rows()) * l.weights->cols();
    const PlaneWeights* p = l.weights->planes();
    if (p == nullptr || !p->graded()) continue;
    const BitPlaneShape& shape = p->planes.shape;
    a.bytes += double(shape.planes_size()) + double(shape.params_size()) * kGroupParamBytes +
               double(p->channel_scale.size()) * sizeof(uint16_t) +
               double(p->schedule.model_targets.size() + p->schedule.budgets.size()) * sizeof(float);
  }
  return a;
}

}  // namespace grinqh
