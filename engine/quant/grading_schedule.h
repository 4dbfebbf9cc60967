// Per-layer bit budgets for model-wide targets: the allocation behind GRINQH's schedules.
//
// Layer l has n_l weights and a cost curve C_l(b) measured on a common grid of budgets b
// (its output error on calibration inputs, weighted by how much that error moves the
// model's output: engine/calibration/calibration_schedule.h). For a model-wide target B the budgets
// minimize Σ_l C_l(b_l) subject to Σ_l n_l b_l = B · Σ_l n_l, with each C_l replaced by the
// piecewise-linear lower convex hull of its points. That is a fractional knapsack: hull
// segments are bought in order of cost saved per bit, the last one partly, so the
// model-wide average is met exactly and at most one layer's budget falls between grid
// points. The budgets of every layer grow with B, so schedules interpolate cleanly.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace grinqh {

// Indices of the lower convex hull of the points (grid[i], cost[i]), left to right (grid
// ascending; points on a hull segment are left out).
std::vector<size_t> LowerHull(std::span<const float> grid, std::span<const double> cost);

struct LayerCost {
  int64_t weights = 0;        // n_l
  std::vector<double> cost;   // C_l at each grid budget
};

// budgets[t][l]: layer l's budget at targets[t]. `grid` ascending, every target within
// [grid.front(), grid.back()], every cost curve as long as the grid.
absl::StatusOr<std::vector<std::vector<float>>> AllocateBudgets(std::span<const LayerCost> layers,
                                                                std::span<const float> grid,
                                                                std::span<const float> targets);

}  // namespace grinqh
