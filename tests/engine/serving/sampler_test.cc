#include "engine/serving/sampler.h"

#include <cmath>
#include <vector>

#include "engine/serving/generator.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

const std::vector<float> kLogits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};

std::vector<int> Histogram(const SamplingParams& params, int draws) {
  Sampler sampler(params);
  std::vector<int> counts(kLogits.size());
  for (int i = 0; i < draws; ++i) ++counts[size_t(sampler.Sample(kLogits))];
  return counts;
}

TEST(SamplerTest, GreedyIsArgmax) {
  Sampler sampler({});
  EXPECT_EQ(sampler.Sample(std::vector<float>{-1.f, 3.f, 2.9f}), 1);
}

TEST(SamplerTest, SameSeedSameSequence) {
  Sampler a({.temperature = 1.f, .seed = 7}), b({.temperature = 1.f, .seed = 7}), c({.temperature = 1.f, .seed = 8});
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.Sample(kLogits));
    sb.push_back(b.Sample(kLogits));
    sc.push_back(c.Sample(kLogits));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

// Frequencies follow softmax(logits / T): a chi-square test against the exact
// probabilities (3 degrees of freedom; 16.27 is the 0.1% critical value).
TEST(SamplerTest, FrequenciesFollowTheDistribution) {
  for (float temperature : {1.f, 0.5f}) {
    const int draws = 40000;
    const auto counts = Histogram({.temperature = temperature, .seed = 3}, draws);
    std::vector<double> p(kLogits.size());
    double total = 0;
    for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp(kLogits[i] / temperature);
    double chi2 = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      const double expected = draws * p[i] / total;
      chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    }
    EXPECT_LT(chi2, 16.27) << "temperature " << temperature;
  }
}

TEST(SamplerTest, TopKAndTopPCutTheTail) {
  auto top2 = Histogram({.temperature = 1.f, .top_k = 2, .seed = 1}, 5000);
  EXPECT_EQ(top2[2] + top2[3], 0);
  EXPECT_GT(top2[1], 0);
  // 0.5 falls short of 0.75, 0.5 + 0.3 reaches it: the nucleus is the first two tokens.
  auto nucleus = Histogram({.temperature = 1.f, .top_p = 0.75f, .seed = 1}, 5000);
  EXPECT_EQ(nucleus[2] + nucleus[3], 0);
  EXPECT_GT(nucleus[1], 0);
  auto tiny = Histogram({.temperature = 1.f, .top_p = 0.01f, .seed = 1}, 1000);
  EXPECT_EQ(tiny[0], 1000);
}

TEST(SamplerTest, ValidationNamesTheField) {
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
  EXPECT_NE(SamplingParams{.temperature = NAN}.Validate().message().find("temperature"), std::string::npos);
  EXPECT_NE(SamplingParams{.temperature = -1}.Validate().message().find("temperature"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_k = -1}.Validate().message().find("top_k"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_p = 0}.Validate().message().find("top_p"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_p = 1.5f}.Validate().message().find("top_p"), std::string::npos);
}

TEST(StopStringFilterTest, HoldsBackPossibleStartsAndCutsAtTheStop) {
  StopStringFilter filter({"</s>", "END"});
  EXPECT_EQ(filter.Push("hello <"), "hello ");
  EXPECT_EQ(filter.Push("/"), "");
  EXPECT_EQ(filter.Push("x"), "</x");  // not a stop after all
  EXPECT_EQ(filter.Push(" E"), " ");
  EXPECT_EQ(filter.Push("NDING"), "");
  EXPECT_TRUE(filter.stopped());
  EXPECT_EQ(filter.Push("more"), "");
}

TEST(StopStringFilterTest, FlushReleasesAPartialStop) {
  StopStringFilter filter({"STOP"});
  EXPECT_EQ(filter.Push("abc ST"), "abc ");
  EXPECT_EQ(filter.Flush(), "ST");
  EXPECT_FALSE(filter.stopped());
}

}  // namespace
}  // namespace grinqh
