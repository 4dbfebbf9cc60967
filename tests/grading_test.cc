#include "engine/grading.h"

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
