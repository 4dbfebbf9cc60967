#include "engine/grading.h"

#include "engine/calibration.h"
#include "engine/quant.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

using ::testing::ElementsAre;

std::vector<uint8_t> Grade(const std::vector<float>& x, const std::vector<float>& c, float target, int max_level = 8) {
  std::vector<uint8_t> levels(x.size());
  GradeRow(x, c, target, max_level, levels);
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
    for (auto& v : c) v = std::exp(0.3f * normal(rng));
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
  const std::vector<float> norms = ColumnNorms(q.DequantizeLevel(8), rows, cols);
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

}  // namespace
}  // namespace grinqh
