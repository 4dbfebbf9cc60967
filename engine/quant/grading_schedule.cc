#include "engine/quant/grading_schedule.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace grinqh {

std::vector<size_t> LowerHull(std::span<const float> grid, std::span<const double> cost) {
  std::vector<size_t> hull;
  for (size_t i = 0; i < grid.size(); ++i) {
    while (hull.size() >= 2) {
      const size_t a = hull[hull.size() - 2], b = hull.back();
      // Drop b when it lies on or above the segment a → i.
      const double cross = (double(grid[b]) - grid[a]) * (cost[i] - cost[a]) -
                           (cost[b] - cost[a]) * (double(grid[i]) - grid[a]);
      if (cross > 0) break;
      hull.pop_back();
    }
    hull.push_back(i);
  }
  return hull;
}

namespace {

struct Segment {
  size_t layer;
  double from, to;        // budgets
  double saving_per_bit;  // cost saved per bit spent model-wide: −ΔC / (n_l · Δb)
};

}  // namespace

absl::StatusOr<std::vector<std::vector<float>>> AllocateBudgets(std::span<const LayerCost> layers,
                                                                std::span<const float> grid,
                                                                std::span<const float> targets) {
  if (layers.empty() || grid.empty()) return absl::InvalidArgumentError("no layers or no grid to allocate over");
  if (!std::is_sorted(grid.begin(), grid.end()) || std::adjacent_find(grid.begin(), grid.end()) != grid.end()) {
    return absl::InvalidArgumentError("the budget grid must be strictly ascending");
  }
  double total_weights = 0;
  for (const LayerCost& l : layers) {
    if (l.weights <= 0 || l.cost.size() != grid.size()) {
      return absl::InvalidArgumentError("every layer needs a positive weight count and one cost per grid point");
    }
    total_weights += double(l.weights);
  }
  std::vector<Segment> segments;
  for (size_t l = 0; l < layers.size(); ++l) {
    const std::vector<size_t> hull = LowerHull(grid, layers[l].cost);
    for (size_t h = 1; h < hull.size(); ++h) {
      const double from = grid[hull[h - 1]], to = grid[hull[h]];
      const double saved = layers[l].cost[hull[h - 1]] - layers[l].cost[hull[h]];
      segments.push_back({l, from, to, saved / (double(layers[l].weights) * (to - from))});
    }
  }
  // A layer's hull segments save less and less per bit, so this order buys each layer's
  // segments in sequence (stable: ties keep that sequence).
  std::stable_sort(segments.begin(), segments.end(),
                   [](const Segment& a, const Segment& b) { return a.saving_per_bit > b.saving_per_bit; });

  std::vector<std::vector<float>> out;
  for (float target : targets) {
    if (!(target >= grid.front() && target <= grid.back())) {
      return absl::InvalidArgumentError(absl::StrCat("target ", target, " is outside the grid [", grid.front(), ", ",
                                                     grid.back(), "]"));
    }
    std::vector<double> budget(layers.size(), grid.front());
    double left = (double(target) - grid.front()) * total_weights;  // bits still to spend
    for (const Segment& s : segments) {
      if (left <= 0) break;
      const double n = double(layers[s.layer].weights);
      const double step = std::min(s.to - s.from, left / n);
      budget[s.layer] = s.from + step;
      left -= step * n;
    }
    out.emplace_back(budget.begin(), budget.end());
  }
  return out;
}

}  // namespace grinqh
