#include "engine/quant/grading.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/base/half.h"

namespace grinqh {
namespace {

// The level of a channel whose log2 importance less the water level is v: round(v)
// clamped to [0, max_level] (floor(v + ½) rather than std::round, which is a library call
// on this hot path; the two differ only at exact ties), or with calibrated thresholds, how
// many of them v reaches.
int LevelAt(float v, std::span<const float> thresholds, int max_level) {
  if (thresholds.empty()) return static_cast<int>(std::clamp(std::floor(v + 0.5f), 0.f, static_cast<float>(max_level)));
  int b = 0;
  while (b < max_level && v >= thresholds[static_cast<size_t>(b)]) ++b;
  return b;
}

// The v at which a channel at `level` moves up one.
float NextThreshold(std::span<const float> thresholds, int level) {
  return thresholds.empty() ? static_cast<float>(level) + 0.5f : thresholds[static_cast<size_t>(level)];
}

}  // namespace

void GradeRow(std::span<const float> x, std::span<const uint16_t> channel_scale, float target, int max_level,
              std::span<uint8_t> levels, std::span<const float> thresholds) {
  const size_t n = x.size();
  thread_local std::vector<float> log_s;
  log_s.resize(n);
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (size_t k = 0; k < n; ++k) {
    const float s = std::abs(x[k]) * HalfToFloat(channel_scale[k]);
    log_s[k] = s > 0 ? std::log2(s) : -std::numeric_limits<float>::infinity();
    if (s > 0) lo = std::min(lo, log_s[k]), hi = std::max(hi, log_s[k]);
  }
  const int64_t budget = std::llround(static_cast<double>(target) * static_cast<double>(n));
  std::fill(levels.begin(), levels.end(), uint8_t{0});
  if (budget <= 0 || !(hi >= lo)) return;

  // The smallest water level whose rounded allocation fits the budget, by bisection:
  // the total is a non-increasing step function of t.
  const auto total_at = [&](float t) {
    int64_t total = 0;
    for (size_t k = 0; k < n; ++k) total += LevelAt(log_s[k] - t, thresholds, max_level);
    return total;
  };
  // Bounds where every channel reads nothing and everything (hi + 1 and lo − max_level − 1
  // with plain rounding).
  float t_fits = hi + 1.5f - NextThreshold(thresholds, 0);
  float t_over = lo - 1.5f - NextThreshold(thresholds, max_level - 1);
  if (total_at(t_over) <= budget) t_fits = t_over;  // everything at full depth fits
  // 1/64 of a bit is fine enough: the remainder step below settles what is left.
  for (int i = 0; i < 40 && t_fits - t_over > 1.f / 64; ++i) {
    const float mid = 0.5f * (t_fits + t_over);
    (total_at(mid) <= budget ? t_fits : t_over) = mid;
  }
  int64_t spent = 0;
  for (size_t k = 0; k < n; ++k) {
    spent += levels[k] = static_cast<uint8_t>(LevelAt(log_s[k] - t_fits, thresholds, max_level));
  }

  // Spend what is left on the channels closest to rounding up.
  int64_t left = budget - spent;
  if (left <= 0) return;
  thread_local std::vector<std::pair<float, uint32_t>> candidates;
  candidates.clear();
  for (size_t k = 0; k < n; ++k) {
    if (levels[k] < max_level && std::isfinite(log_s[k])) {
      candidates.push_back({log_s[k] - t_fits - NextThreshold(thresholds, levels[k]), static_cast<uint32_t>(k)});
    }
  }
  left = std::min<int64_t>(left, static_cast<int64_t>(candidates.size()));
  if (left <= 0) return;  // every channel already at the deepest level
  std::nth_element(candidates.begin(), candidates.begin() + left - 1, candidates.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t i = 0; i < left; ++i) ++levels[candidates[static_cast<size_t>(i)].second];
}

}  // namespace grinqh

namespace grinqh {

void GradeRowByGains(std::span<const float> x, std::span<const float> gains, float target, int max_level,
                     std::span<uint8_t> levels) {
  const size_t n = x.size();
  const size_t m = static_cast<size_t>(max_level);
  const int64_t budget = std::llround(static_cast<double>(target) * static_cast<double>(n));
  std::fill(levels.begin(), levels.end(), uint8_t{0});
  if (budget <= 0) return;
  // In log2: channel k reads level b when log2 x_k² + log2 g_k(b) >= log2 λ.
  thread_local std::vector<float> score;
  score.resize(n * m);
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (size_t k = 0; k < n; ++k) {
    const float log_x2 = x[k] != 0.f ? 2.f * std::log2(std::abs(x[k])) : -std::numeric_limits<float>::infinity();
    for (size_t b = 0; b < m; ++b) {
      const float g = gains[k * m + b];
      const float v = g > 0.f ? log_x2 + std::log2(g) : -std::numeric_limits<float>::infinity();
      score[k * m + b] = v;
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  if (!(hi >= lo)) return;
  const auto levels_at = [&](float threshold, bool write) {
    int64_t total = 0;
    for (size_t k = 0; k < n; ++k) {
      size_t b = 0;
      while (b < m && score[k * m + b] >= threshold) ++b;  // gains fall with depth: stop at the first miss
      total += static_cast<int64_t>(b);
      if (write) levels[k] = static_cast<uint8_t>(b);
    }
    return total;
  };
  float fits = hi + 1.f, over = lo - 1.f;
  if (levels_at(over, false) <= budget) fits = over;
  for (int i = 0; i < 40 && fits - over > 1e-4f; ++i) {
    const float mid = 0.5f * (fits + over);
    (levels_at(mid, false) <= budget ? fits : over) = mid;
  }
  int64_t left = budget - levels_at(fits, true);
  // The remainder goes to the channels whose next level gains the most.
  thread_local std::vector<std::pair<float, uint32_t>> next;
  next.clear();
  for (size_t k = 0; k < n; ++k) {
    if (levels[k] < max_level && std::isfinite(score[k * m + levels[k]])) {
      next.push_back({score[k * m + levels[k]], static_cast<uint32_t>(k)});
    }
  }
  left = std::min<int64_t>(left, static_cast<int64_t>(next.size()));
  if (left <= 0) return;
  std::nth_element(next.begin(), next.begin() + left - 1, next.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t i = 0; i < left; ++i) ++levels[next[static_cast<size_t>(i)].second];
}

}  // namespace grinqh

namespace grinqh {

float LayerSchedule::LayerTarget(float model_target) const {
  if (model_targets.empty() || model_target <= 0.f) return model_target;
  if (model_target <= model_targets.front()) return budgets.front() * (model_target / model_targets.front());
  if (model_target >= model_targets.back()) return budgets.back();
  const size_t i = static_cast<size_t>(std::upper_bound(model_targets.begin(), model_targets.end(), model_target) -
                                       model_targets.begin());  // model_targets[i-1] < target < model_targets[i]
  const float f = (model_target - model_targets[i - 1]) / (model_targets[i] - model_targets[i - 1]);
  return budgets[i - 1] + f * (budgets[i] - budgets[i - 1]);
}

}  // namespace grinqh
