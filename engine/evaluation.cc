#include "engine/evaluation.h"

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

}  // namespace grinqh
