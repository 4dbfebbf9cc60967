#include "engine/calibration/evaluation.h"

#include <cmath>
#include <vector>

#include "engine/calibration/calibration.h"
#include "engine/serving/model.h"
#include "tests/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

TEST(ScoreWindowTest, IdenticalModelsAgreeAndPerplexityIsTheNextTokenLoss) {
  // Two positions over a vocabulary of 2: probabilities (0.8, 0.2) then (0.5, 0.5).
  const std::vector<float> logits = {std::log(0.8f), std::log(0.2f), 0.f, 0.f};
  const std::vector<int32_t> tokens = {0, 1};
  EvalStats stats;
  ScoreWindow(logits, logits, tokens, 2, stats);
  EXPECT_EQ(stats.positions, 2);
  EXPECT_EQ(stats.predictions, 1);  // the last position has no next token
  EXPECT_NEAR(stats.kld(), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(stats.top1(), 1.0);
  EXPECT_NEAR(stats.ppl(), 1 / 0.2, 1e-5);  // token 1 follows with probability 0.2
}

TEST(ScoreWindowTest, KlDivergenceAndTop1MatchHandComputedValues) {
  const std::vector<float> reference = {std::log(0.8f), std::log(0.2f)};
  const std::vector<float> candidate = {std::log(0.4f), std::log(0.6f)};
  const std::vector<int32_t> tokens = {0};
  EvalStats stats;
  ScoreWindow(reference, candidate, tokens, 2, stats);
  const double want = 0.8 * std::log(0.8 / 0.4) + 0.2 * std::log(0.2 / 0.6);
  EXPECT_NEAR(stats.kld(), want, 1e-6);
  EXPECT_DOUBLE_EQ(stats.top1(), 0.0);
}

TEST(MakeWindowsTest, ConsecutiveNonOverlappingAndCapped) {
  std::vector<int32_t> ids(10);
  for (int i = 0; i < 10; ++i) ids[size_t(i)] = i;
  const auto windows = MakeWindows(ids, 3, 100);
  ASSERT_EQ(windows.size(), 3u);  // the incomplete tail is dropped
  EXPECT_THAT(windows[1], ::testing::ElementsAre(3, 4, 5));
  EXPECT_EQ(MakeWindows(ids, 3, 2).size(), 2u);
}

// The accounting behind eval's effective and footprint bits, against sums by hand over the
// bundled model's layers (every input width a multiple of 128; k and v have 128 rows).
TEST(BitsAccountTest, FixedWidthGradedAndFootprint) {
  auto model = Model::Load(testing::SourceDir() / "models" / "tiny-llama3");
  ASSERT_TRUE(model.ok()) << model.status();
  // An fp16 scale and a byte zero per 128 weights: 24 / 128 bits.
  EXPECT_DOUBLE_EQ(FixedWidthBits((*model)->weights(), (*model)->config(), 4, 128).bits(), 4.1875);

  ForwardStats reads;
  reads.weight_bytes = 1000, reads.weights = 4000, reads.graded_channels = 50, reads.graded_products = 2;
  reads.plane_bytes = 900;
  EXPECT_DOUBLE_EQ(GradedReadBits(reads, 4, 0).bits(), 8.0 * (1000 + 50 * 4) / 4000);
  EXPECT_DOUBLE_EQ(GradedReadBits(reads, 4, 40).bits(), 8.0 * (1000 + 50 * 4 + 2 * 40) / 4000);

  BaselineOptions grinqh;
  grinqh.method = "grinqh";
  grinqh.bits = 8;  // the stored depth
  auto variant = QuantizedVariant::Create(**model, grinqh, {});
  ASSERT_TRUE(variant.ok()) << variant.status();
  double bits = 0, weights = 0;
  ModelWeights w = (*model)->weights();
  for (const LinearLayerRef& l : LinearLayers(w, (*model)->config())) {
    const double n = double(l.weights->rows()) * l.weights->cols();
    // 8 planes (one tile of its own height when under 256 rows: no padding), an fp16 scale
    // and a byte zero per 128 weights of a row, one fp16 statistic per input channel.
    bits += 8 * n + 24 * n / 128 + 16.0 * l.weights->cols(), weights += n;
  }
  EXPECT_NEAR(NestedFootprintBits((*variant)->weights(), (*model)->config()).bits(), bits / weights, 1e-9);
}

}  // namespace
}  // namespace grinqh
