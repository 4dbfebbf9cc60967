#include "engine/quant/grading.h"

#include "engine/calibration/calibration.h"
#include "engine/quant/grading_schedule.h"
#include "engine/base/half.h"
#include "engine/quant/quant.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

using ::testing::ElementsAre;

// The statistic goes in as fp16, as files store it; the tests' values are fp16 values.
std::vector<uint8_t> Grade(const std::vector<float>& x, const std::vector<float>& c, float target, int max_level = 8) {
  std::vector<uint16_t> c16(c.size());
  std::transform(c.begin(), c.end(), c16.begin(), HalfBits);
  std::vector<uint8_t> levels(x.size());
  GradeRow(x, c16, target, max_level, levels);
  return levels;
}

TEST(GradeRowTest, PowersOfTwoFollowTheWaterLevel) {
  // log2 importance 3, 2, 1, 0; a budget of 6 bits puts the water level at 0.
  EXPECT_THAT(Grade({8, 4, 2, 1}, {1, 1, 1, 1}, 1.5f), ElementsAre(3, 2, 1, 0));
  // The channel statistic counts as much as the activation: same importances, permuted.
  EXPECT_THAT(Grade({1, 1, 1, 1}, {1, 2, 4, 8}, 1.5f), ElementsAre(0, 1, 2, 3));
}

TEST(GradeRowTest, SpendsExactlyTheBudgetAndKeepsTheRanking) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (float target : {0.5f, 1.5f, 2.0f, 2.5f, 3.0f, 4.0f, 6.0f}) {
    std::vector<float> x(1000), c(1000);
    for (auto& v : x) v = normal(rng) * std::exp(normal(rng));
    for (auto& v : c) v = quant::RoundToHalf(std::exp(0.3f * normal(rng)));
    const auto levels = Grade(x, c, target);
    const int total = std::accumulate(levels.begin(), levels.end(), 0);
    EXPECT_EQ(total, std::lround(target * 1000)) << "target " << target;
    for (size_t a = 0; a < x.size(); ++a) {
      for (size_t b = 0; b < x.size(); b += 37) {
        if (std::abs(x[a]) * c[a] > std::abs(x[b]) * c[b]) {
          ASSERT_GE(levels[a] + 1, levels[b]) << "a more important channel lost more than rounding allows";
        }
      }
    }
  }
}

// Thresholds b − ½ are plain rounding written out: the same levels, channel for channel.
// A table that ties level 1 to level 2 (as LevelThresholds does when level 1 buys little)
// still spends the budget exactly.
TEST(GradeRowTest, ThresholdsGeneralizeRounding) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  std::vector<float> x(777), c(777);
  for (auto& v : x) v = normal(rng) * std::exp(normal(rng));
  for (auto& v : c) v = quant::RoundToHalf(std::exp(0.3f * normal(rng)));
  std::vector<uint16_t> c16(c.size());
  std::transform(c.begin(), c.end(), c16.begin(), HalfBits);
  const std::vector<float> rounding = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f};
  const std::vector<float> tied = {2.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f};
  for (float target : {1.5f, 2.f, 3.f, 4.5f}) {
    std::vector<uint8_t> with(x.size()), tied_levels(x.size());
    GradeRow(x, c16, target, 8, with, rounding);
    EXPECT_EQ(with, Grade(x, c, target)) << "target " << target;
    GradeRow(x, c16, target, 8, tied_levels, tied);
    EXPECT_EQ(std::accumulate(tied_levels.begin(), tied_levels.end(), 0), std::lround(target * 777));
    const auto ones = std::count(tied_levels.begin(), tied_levels.end(), uint8_t{1});
    EXPECT_LE(ones, 1) << "level 1 is only reached through the one-bit remainder";
  }
}

TEST(GradeRowTest, FullTargetReadsEverythingAndZeroInputsNothing) {
  EXPECT_THAT(Grade({0.1f, -3, 2, 0.5f}, {1, 1, 1, 1}, 8.f), ElementsAre(8, 8, 8, 8));
  EXPECT_THAT(Grade({0, 0, 5, 0}, {1, 1, 1, 1}, 4.f), ElementsAre(0, 0, 8, 0));
  EXPECT_THAT(Grade({1, 2, 3, 4}, {1, 1, 1, 1}, 0.f), ElementsAre(0, 0, 0, 0));
  const auto shallow = Grade({1, 2, 3, 4}, {1, 1, 1, 1}, 4.f, /*max_level=*/4);
  EXPECT_TRUE(std::all_of(shallow.begin(), shallow.end(), [](uint8_t l) { return l <= 4; }));
}

}  // namespace
}  // namespace grinqh

namespace grinqh {
namespace {

// The error-curve rule spends the same budget as water-filling and, on the error it
// optimizes (Σ x_k² E_k(b_k), measured here from the matrix itself), does at least as well.
TEST(GradeRowByGainsTest, SpendsTheBudgetWithNoMoreErrorThanWaterFilling) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  const int rows = 128, cols = 256;
  std::vector<float> w(size_t(rows) * cols);
  for (float& v : w) v = 0.05f * normal(rng);
  for (int k = 0; k < cols; k += 7)
    for (int r = 0; r < rows; ++r) w[size_t(r) * cols + size_t(k)] *= 4;  // some heavy columns
  const quant::QuantizedMatrix q = quant::QuantizeRtn(w, rows, cols, 8, 128);
  const std::vector<float> gains = LevelGains(w, q, 8);
  const std::vector<uint16_t> norms = ColumnNormsF16(q.DequantizeLevel(8), rows, cols);
  std::vector<float> x(cols);
  for (float& v : x) v = normal(rng) * std::exp(normal(rng));

  // Σ_k x_k² ‖W_k − Ŵ_k(b_k)‖², straight from the dequantized levels.
  const auto error = [&](const std::vector<uint8_t>& levels) {
    double total = 0;
    for (int b = 0; b <= 8; ++b) {
      const std::vector<float> w_b = q.DequantizeLevel(b);
      for (int k = 0; k < cols; ++k) {
        if (levels[size_t(k)] != b) continue;
        for (int r = 0; r < rows; ++r) {
          const double d = w[size_t(r) * cols + size_t(k)] - w_b[size_t(r) * cols + size_t(k)];
          total += double(x[size_t(k)]) * x[size_t(k)] * d * d;
        }
      }
    }
    return total;
  };
  for (float target : {2.f, 3.f, 4.f}) {
    std::vector<uint8_t> by_gains(cols), by_statistic(cols);
    GradeRowByGains(x, gains, target, 8, by_gains);
    GradeRow(x, norms, target, 8, by_statistic);
    EXPECT_EQ(std::accumulate(by_gains.begin(), by_gains.end(), 0), int(target * cols));
    EXPECT_LE(error(by_gains), error(by_statistic)) << "target " << target;
  }
}

// On bell-shaped weights level 1 (two values per group, at ±range/4) removes little of the
// error of skipping, so its threshold joins level 2's; deeper levels each quarter the error,
// so their thresholds step by about one (log2 of an importance ratio of 2).
TEST(LevelThresholdsTest, TieLevelOneToTwoOnGaussianWeights) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const int rows = 64, cols = 512;
  std::vector<float> w(size_t(rows) * cols);
  for (float& v : w) v = 0.02f * normal(rng);
  const quant::QuantizedMatrix q = quant::QuantizeRtn(w, rows, cols, 8, 256);
  const std::vector<float> t = LevelThresholds(w, q, 8);
  ASSERT_EQ(t.size(), 8u);
  EXPECT_FLOAT_EQ(t[0], t[1]);
  for (size_t b = 1; b < 8; ++b) EXPECT_GE(t[b], t[b - 1]);
  for (size_t b = 2; b < 6; ++b) EXPECT_NEAR(t[b] - t[b - 1], 1.0, 0.25) << "level " << b + 1 << ": " << t[b];
}

TEST(LayerScheduleTest, InterpolatesBetweenTargetsAndScalesBelowThem) {
  const LayerSchedule s{{2.f, 3.f, 4.f}, {1.f, 2.5f, 4.f}};
  EXPECT_FLOAT_EQ(s.LayerTarget(2.f), 1.f);
  EXPECT_FLOAT_EQ(s.LayerTarget(2.5f), 1.75f);
  EXPECT_FLOAT_EQ(s.LayerTarget(3.f), 2.5f);
  EXPECT_FLOAT_EQ(s.LayerTarget(4.f), 4.f);
  EXPECT_FLOAT_EQ(s.LayerTarget(1.f), 0.5f);  // below the first target: in proportion
  EXPECT_FLOAT_EQ(s.LayerTarget(0.f), 0.f);   // full depth stays full depth
  EXPECT_FLOAT_EQ(LayerSchedule{}.LayerTarget(2.7f), 2.7f);  // no schedule: the target itself
}

// Σ_l C_l(b_l) with C_l linear between grid points, for a brute-force comparison.
double TotalCost(const std::vector<LayerCost>& layers, const std::vector<float>& grid, const std::vector<float>& b) {
  double total = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const size_t i = size_t(std::upper_bound(grid.begin(), grid.end(), b[l] - 1e-6f) - grid.begin());
    if (i == 0) {
      total += layers[l].cost[0];
      continue;
    }
    const size_t j = std::min(i, grid.size() - 1);
    const double f = j == i - 1 ? 0 : (b[l] - grid[i - 1]) / (grid[j] - grid[i - 1]);
    total += layers[l].cost[i - 1] + f * (layers[l].cost[j] - layers[l].cost[i - 1]);
  }
  return total;
}

TEST(AllocateBudgetsTest, MeetsTheTargetExactlyAndBeatsEveryGridAllocation) {
  const std::vector<float> grid = {1, 2, 3, 4};
  // Convex, decreasing error curves of different steepness and sizes.
  const std::vector<LayerCost> layers = {{100, {8, 2, 0.5, 0.125}}, {300, {1, 0.25, 0.06, 0.015}},
                                         {200, {40, 10, 2.5, 0.6}}};
  const std::vector<float> targets = {1, 1.5, 2, 2.5, 3, 4};
  auto budgets = AllocateBudgets(layers, grid, targets);
  ASSERT_TRUE(budgets.ok()) << budgets.status();
  std::vector<float> previous(layers.size(), 0.f);
  for (size_t t = 0; t < targets.size(); ++t) {
    const std::vector<float>& b = (*budgets)[t];
    double spent = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      spent += double(layers[l].weights) * b[l];
      EXPECT_GE(b[l], previous[l]) << "budgets grow with the target";
    }
    EXPECT_NEAR(spent / 600, targets[t], 1e-6);
    previous = b;
    // No allocation on the grid with the same total does better.
    const double cost = TotalCost(layers, grid, b);
    for (float b0 : grid) {
      for (float b1 : grid) {
        for (float b2 : grid) {
          if (std::abs((100 * b0 + 300 * b1 + 200 * b2) / 600 - targets[t]) > 1e-6) continue;
          EXPECT_LE(cost, TotalCost(layers, grid, {b0, b1, b2}) + 1e-9) << targets[t];
        }
      }
    }
  }
  // The steep layer (most error per weight) gets the most bits.
  EXPECT_GT((*budgets)[3][2], (*budgets)[3][1]);
}

TEST(AllocateBudgetsTest, ANonConvexCurveIsReadOnItsHull) {
  // Level 2 no better than level 1 for the first layer: it jumps from 1 straight to 3.
  const std::vector<float> grid = {1, 2, 3};
  const std::vector<LayerCost> layers = {{1, {10, 10, 0}}, {1, {10, 5, 0}}};
  auto budgets = AllocateBudgets(layers, grid, std::vector<float>{1.5f});
  ASSERT_TRUE(budgets.ok());
  EXPECT_NEAR((*budgets)[0][0] + (*budgets)[0][1], 3.0, 1e-6);
  // Hull slopes: layer 0 saves 5 per bit over [1, 3], layer 1 5 per bit over [1, 2]: a tie
  // either way, and the total cost is the same; the target is met exactly.
  EXPECT_FALSE(AllocateBudgets(layers, grid, std::vector<float>{0.5f}).ok());  // below the grid
  EXPECT_FALSE(AllocateBudgets(layers, std::vector<float>{1, 2}, std::vector<float>{1.5f}).ok());  // curve length
}

}  // namespace
}  // namespace grinqh
