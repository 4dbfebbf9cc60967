// Quantizers: the shared group-wise format (quant.h), GPTQ (gptq.h) and AWQ (awq.h).
// References are built here from first principles (naive loops, hand-computed values),
// never from the code under test.
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "engine/quant/awq.h"
#include "engine/quant/gptq.h"
#include "engine/quant/quant.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

using quant::GroupParams;
using quant::QuantizedMatrix;
using quant::QuantizeRtn;
using quant::QuantizeValue;
using quant::RoundToHalf;
using quant::TruncatedCode;

size_t At(int r, int c, int cols) { return static_cast<size_t>(r) * static_cast<size_t>(cols) + static_cast<size_t>(c); }

std::vector<float> Gaussian(size_t size, uint32_t seed, float sigma = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(size);
  for (float& x : v) x = dist(rng);
  return v;
}

// n samples of `cols` correlated, unequal channels: X = Z A with a random mixing matrix.
std::vector<float> CorrelatedInputs(int n, int cols, uint32_t seed) {
  const std::vector<float> z = Gaussian(At(n, 0, cols), seed);
  const std::vector<float> a = Gaussian(At(cols, 0, cols), seed + 1, 1.f / std::sqrt(static_cast<float>(cols)));
  std::vector<float> x(z.size(), 0.f);
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < cols; ++i)
      for (int j = 0; j < cols; ++j) x[At(t, j, cols)] += z[At(t, i, cols)] * a[At(i, j, cols)];
  return x;
}

// ‖(W − Ŵ) Xᵀ‖², summed over samples and output rows, in double.
double OutputError(const std::vector<float>& w, const std::vector<float>& w_hat, int rows, int cols,
                   const std::vector<float>& x, int n) {
  double total = 0;
  for (int r = 0; r < rows; ++r) {
    for (int t = 0; t < n; ++t) {
      double y = 0;
      for (int k = 0; k < cols; ++k) y += (double(w[At(r, k, cols)]) - w_hat[At(r, k, cols)]) * x[At(t, k, cols)];
      total += y * y;
    }
  }
  return total;
}

std::vector<double> NaiveHessian(const std::vector<float>& x, int n, int cols) {
  std::vector<double> h(At(cols, 0, cols), 0.0);
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < cols; ++i)
      for (int j = 0; j < cols; ++j) h[At(i, j, cols)] += 2.0 * x[At(t, i, cols)] * x[At(t, j, cols)] / n;
  return h;
}

std::vector<double> Identity(int n) {
  std::vector<double> h(At(n, 0, n), 0.0);
  for (int i = 0; i < n; ++i) h[At(i, i, n)] = 1.0;
  return h;
}

void ExpectSameQuantization(const QuantizedMatrix& a, const QuantizedMatrix& b) {
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
}

// ---- quant.h ----

TEST(QuantTest, TruncatedCodeLevels) {
  for (int code : {0, 5, 77, 128, 255}) EXPECT_EQ(TruncatedCode(uint8_t(code), 8, 8), float(code));
  for (int code : {0, 5, 200, 255}) EXPECT_EQ(TruncatedCode(uint8_t(code), 8, 0), 127.5f);
  EXPECT_EQ(TruncatedCode(5, 8, 7), 4.5f);  // 0b101: top 7 bits cover codes {4, 5}
  EXPECT_EQ(TruncatedCode(5, 4, 2), 5.5f);  // 0b0101 → 0b01xx covers 4..7
}

TEST(QuantTest, RtnHandExample) {
  // 2 bits, groups of 2.  Row 0: [−1, 0.5] → scale 0.5, zero 2; [2, 1] → range [0, 2],
  // scale fp16(2/3) = 0.66650390625, zero 0.  Row 1: [0, 0] → scale 1, zero 0;
  // [0.3, −0.3] → scale fp16(0.2) = 0.199951171875, zero round(1.50037) = 2.
  const std::vector<float> w = {-1.f, 0.5f, 2.f, 1.f, 0.f, 0.f, 0.3f, -0.3f};
  const QuantizedMatrix q = QuantizeRtn(w, 2, 4, 2, 2);
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 3, 3, 2, 0, 0, 3, 0}));
  EXPECT_EQ(q.scales, (std::vector<float>{0.5f, 0.66650390625f, 1.f, 0.199951171875f}));
  EXPECT_EQ(q.zeros, (std::vector<float>{2.f, 0.f, 0.f, 2.f}));
  const std::vector<float> d = q.Dequantize();
  EXPECT_EQ(d[2], 0.66650390625f * 3);
  EXPECT_EQ(d[7], 0.199951171875f * -2);
}

TEST(QuantTest, TruncationErrorDoublesPerDroppedBit) {
  const int rows = 64, cols = 512;
  const std::vector<float> w = Gaussian(At(rows, 0, cols), 7);
  const QuantizedMatrix q = QuantizeRtn(w, rows, cols, 8, 128);
  std::vector<double> rms;
  for (int level = 8; level >= 2; --level) {
    const std::vector<float> d = q.DequantizeLevel(level);
    double e = 0;
    for (size_t i = 0; i < w.size(); ++i) e += (double(w[i]) - d[i]) * (double(w[i]) - d[i]);
    rms.push_back(std::sqrt(e / double(w.size())));
  }
  for (size_t i = 1; i < rms.size(); ++i) {
    EXPECT_GT(rms[i] / rms[i - 1], 1.7) << "level " << 8 - int(i);
    EXPECT_LT(rms[i] / rms[i - 1], 2.3) << "level " << 8 - int(i);
  }
}

// ---- GPTQ ----

TEST(GptqTest, HessianAccumulatorMatchesNaiveSum) {
  const int cols = 70;  // not a multiple of the kernel's tile width
  const std::vector<float> x = Gaussian(At(337, 0, cols), 3);
  HessianAccumulator acc(cols, 2);
  acc.Add(x.data(), 37);
  acc.Add(x.data() + At(37, 0, cols), 300);  // more than one internal chunk
  EXPECT_EQ(acc.samples(), 337);
  const std::vector<double> want = NaiveHessian(x, 337, cols);
  for (int i = 0; i < cols; ++i) {
    for (int j = 0; j < cols; ++j) {
      EXPECT_NEAR(acc.hessian()[At(i, j, cols)], want[At(i, j, cols)], 1e-5) << i << "," << j;
      EXPECT_EQ(acc.hessian()[At(i, j, cols)], acc.hessian()[At(j, i, cols)]);
    }
  }
}

TEST(GptqTest, IdentityHessianIsRtn) {
  // Uncorrelated, equal channels: no error has anywhere better to go, so GPTQ is RTN.
  const int rows = 48, cols = 256;
  const std::vector<float> w = Gaussian(At(rows, 0, cols), 11);
  for (int bits : {2, 3, 4, 8}) {
    for (bool act_order : {false, true}) {
      for (int group : {128, 64, 256}) {
        const GptqOptions options{.bits = bits, .group_size = group, .block_size = 128, .act_order = act_order};
        ExpectSameQuantization(QuantizeGptq(w, rows, cols, Identity(cols), options),
                               QuantizeRtn(w, rows, cols, bits, group));
      }
    }
  }
}

// GPTQ as the paper states it before any reformulation (OBS with a fixed order, in double):
// quantize column q, move the other columns by −(w_q − q̂)/[H⁻¹]_qq · H⁻¹[q, :], then
// remove q from H⁻¹ by Gaussian elimination. No Cholesky, no blocks, no lazy updates.
std::vector<uint8_t> ObsReference(const std::vector<float>& w_in, int rows, int cols, std::vector<double> h,
                                  int bits, int group, const std::vector<int>& order) {
  double mean = 0;
  for (int i = 0; i < cols; ++i) mean += h[At(i, i, cols)] / cols;
  for (int i = 0; i < cols; ++i) h[At(i, i, cols)] += 0.01 * mean;
  std::vector<double> inv = Identity(cols);  // Gauss–Jordan: h → I, inv → H⁻¹
  for (int p = 0; p < cols; ++p) {
    const double d = h[At(p, p, cols)];
    for (int j = 0; j < cols; ++j) h[At(p, j, cols)] /= d, inv[At(p, j, cols)] /= d;
    for (int i = 0; i < cols; ++i) {
      const double f = i == p ? 0 : h[At(i, p, cols)];
      for (int j = 0; j < cols; ++j) h[At(i, j, cols)] -= f * h[At(p, j, cols)], inv[At(i, j, cols)] -= f * inv[At(p, j, cols)];
    }
  }
  std::vector<double> w(w_in.begin(), w_in.end());
  std::vector<uint8_t> codes(w.size());
  std::vector<quant::GroupParams> params(At(rows, 0, cols));
  std::vector<bool> seen(size_t(cols), false);
  for (int q : order) {
    const int g0 = q / group * group, g1 = std::min(cols, g0 + group);
    for (int r = 0; r < rows && !seen[g0]; ++r) {
      double lo = w[At(r, g0, cols)], hi = lo;
      for (int c = g0; c < g1; ++c) lo = std::min(lo, w[At(r, c, cols)]), hi = std::max(hi, w[At(r, c, cols)]);
      params[At(r, g0, cols)] = quant::ChooseGroupParams(float(lo), float(hi), bits);
    }
    seen[g0] = true;
    const double dqq = inv[At(q, q, cols)];
    for (int r = 0; r < rows; ++r) {
      const quant::GroupParams gp = params[At(r, g0, cols)];
      codes[At(r, q, cols)] = QuantizeValue(float(w[At(r, q, cols)]), gp, bits);
      const double e = (w[At(r, q, cols)] - gp.scale * (double(codes[At(r, q, cols)]) - gp.zero)) / dqq;
      for (int j = 0; j < cols; ++j) w[At(r, j, cols)] -= e * inv[At(q, j, cols)];
    }
    const std::vector<double> row_q(inv.begin() + long(At(q, 0, cols)), inv.begin() + long(At(q + 1, 0, cols)));
    for (int i = 0; i < cols; ++i)
      for (int j = 0; j < cols; ++j) inv[At(i, j, cols)] -= row_q[i] * row_q[j] / dqq;
  }
  return codes;
}

TEST(GptqTest, MatchesUnblockedObsReference) {
  const int n = 1024, cols = 96, rows = 32;
  const std::vector<float> x = CorrelatedInputs(n, cols, 81);
  const std::vector<float> w = Gaussian(At(rows, 0, cols), 82);
  HessianAccumulator acc(cols);
  acc.Add(x.data(), n);
  for (bool act_order : {false, true}) {
    std::vector<int> order(static_cast<size_t>(cols));
    std::iota(order.begin(), order.end(), 0);
    const std::vector<double>& h = acc.hessian();
    if (act_order) std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return h[At(a, a, cols)] > h[At(b, b, cols)]; });
    const std::vector<uint8_t> want = ObsReference(w, rows, cols, h, 3, 24, order);
    const GptqOptions options{.bits = 3, .group_size = 24, .block_size = 16, .act_order = act_order};
    const QuantizedMatrix q = QuantizeGptq(w, rows, cols, h, options);
    // Float vs double can flip a code sitting on a rounding boundary (and what follows it).
    size_t same = 0;
    for (size_t i = 0; i < want.size(); ++i) same += q.codes[i] == want[i];
    std::printf("act_order %d: %.2f%% of codes as the unblocked reference\n", act_order, 100.0 * double(same) / double(want.size()));
    EXPECT_GT(double(same) / double(want.size()), 0.99);
  }
}

TEST(GptqTest, BeatsRtnOnCorrelatedInputs) {
  const int n = 2048, cols = 256, rows = 96;
  const std::vector<float> x = CorrelatedInputs(n, cols, 21);
  const std::vector<float> w = Gaussian(At(rows, 0, cols), 22);
  HessianAccumulator acc(cols);
  acc.Add(x.data(), n);
  for (int bits : {2, 3, 4}) {
    const double rtn_error = OutputError(w, QuantizeRtn(w, rows, cols, bits, 128).Dequantize(), rows, cols, x, n);
    for (bool act_order : {false, true}) {
      GptqReport report;
      const GptqOptions options{.bits = bits, .act_order = act_order};
      const QuantizedMatrix q = QuantizeGptq(w, rows, cols, acc.hessian(), options, &report);
      const double gptq = OutputError(w, q.Dequantize(), rows, cols, x, n);
      std::printf("bits %d act_order %d: GPTQ/RTN output error %.3f\n", bits, act_order, gptq / rtn_error);
      EXPECT_LT(gptq, 0.75 * rtn_error) << "bits " << bits << " act_order " << act_order;
      EXPECT_FALSE(report.fell_back_to_rtn);
      EXPECT_EQ(report.damp_retries, 0);
    }
    // static_groups: every group's params from the original weights, i.e. RTN's params.
    const QuantizedMatrix rtn = QuantizeRtn(w, rows, cols, bits, 128);
    const QuantizedMatrix q = QuantizeGptq(w, rows, cols, acc.hessian(), GptqOptions{.bits = bits, .static_groups = true});
    EXPECT_EQ(q.scales, rtn.scales);
    EXPECT_EQ(q.zeros, rtn.zeros);
    EXPECT_LT(OutputError(w, q.Dequantize(), rows, cols, x, n), 0.8 * rtn_error);
  }
}

// Every code is the rounding of the (error-updated) weight the algorithm had at that point,
// under the stored params of its group: the stored matrix is what GPTQ decided.
void ExpectCodesMatchTargets(const QuantizedMatrix& q, const GptqReport& report, int bits) {
  ASSERT_EQ(report.targets.size(), q.codes.size());
  const int max_code = (1 << bits) - 1;
  const std::vector<float> d = q.Dequantize();
  size_t clamped = 0, beyond_step = 0;
  for (int r = 0; r < q.rows; ++r) {
    for (int c = 0; c < q.cols; ++c) {
      const size_t i = At(r, c, q.cols), p = q.param_index(r, c);
      const GroupParams params{q.scales[p], q.zeros[p]};
      const float t = report.targets[i];
      ASSERT_GT(params.scale, 0.f);
      ASSERT_EQ(RoundToHalf(params.scale), params.scale);
      ASSERT_EQ(std::round(params.zero), params.zero);
      ASSERT_LE(q.codes[i], max_code);
      ASSERT_EQ(q.codes[i], QuantizeValue(t, params, bits));
      if (t < -params.scale * params.zero || t > params.scale * (float(max_code) - params.zero)) {
        ++clamped;  // pushed past its group's range after the params were chosen
        beyond_step += std::fabs(d[i] - t) > params.scale;
      } else {
        EXPECT_LE(std::fabs(d[i] - t), 0.5f * params.scale * (1 + 1e-5f)) << r << "," << c;
      }
    }
  }
  std::printf("bits %d: %.2f%% clamped to the group range, %.3f%% more than a step from the target\n", bits,
              100.0 * double(clamped) / double(q.codes.size()), 100.0 * double(beyond_step) / double(q.codes.size()));
  EXPECT_LT(clamped, q.codes.size() / 10);
  EXPECT_LT(beyond_step, q.codes.size() / 200);
}

TEST(GptqTest, CodesMatchTheirTargets) {
  const int n = 1024, cols = 192, rows = 40;
  const std::vector<float> x = CorrelatedInputs(n, cols, 31);
  const std::vector<float> w = Gaussian(At(rows, 0, cols), 32);
  HessianAccumulator acc(cols);
  acc.Add(x.data(), n);
  // Groups smaller than blocks and not aligned with them, a partial last group; defaults.
  for (GptqOptions options : {GptqOptions{.bits = 3, .group_size = 40, .block_size = 32}, GptqOptions{}}) {
    for (bool act_order : {false, true}) {
      options.act_order = act_order;
      GptqReport report;
      const QuantizedMatrix q = QuantizeGptq(w, rows, cols, acc.hessian(), options, &report);
      ExpectCodesMatchTargets(q, report, options.bits);
    }
  }
}

TEST(GptqTest, DeadInputsGiveZeroColumns) {
  const int n = 512, cols = 128, rows = 32;
  std::vector<float> x = CorrelatedInputs(n, cols, 41);
  for (int t = 0; t < n; ++t) x[At(t, 3, cols)] = x[At(t, 100, cols)] = 0.f;
  HessianAccumulator acc(cols);
  acc.Add(x.data(), n);
  const std::vector<float> w = Gaussian(At(rows, 0, cols), 42);
  for (bool act_order : {false, true}) {
    const GptqOptions options{.bits = 3, .group_size = 64, .act_order = act_order};
    const std::vector<float> d = QuantizeGptq(w, rows, cols, acc.hessian(), options).Dequantize();
    for (int r = 0; r < rows; ++r) {
      EXPECT_EQ(d[At(r, 3, cols)], 0.f);
      EXPECT_EQ(d[At(r, 100, cols)], 0.f);
    }
  }
}

TEST(GptqTest, RaisesDampThenFallsBackToRtn) {
  const int cols = 64, rows = 16;
  const std::vector<float> w = Gaussian(At(rows, 0, cols), 51);
  // I − 1.05 u uᵀ has eigenvalue −0.05 along u: damp 0.01 is not enough, 0.1 is.
  std::vector<double> h = Identity(cols);
  for (int i = 0; i < cols; ++i)
    for (int j = 0; j < cols; ++j) h[At(i, j, cols)] -= 1.05 / cols;
  GptqReport report;
  QuantizeGptq(w, rows, cols, h, GptqOptions{.bits = 4}, &report);
  EXPECT_FALSE(report.fell_back_to_rtn);
  EXPECT_EQ(report.damp_retries, 1);
  EXPECT_NEAR(report.damp, 0.1, 1e-12);
  // Negative definite, or NaN: nothing helps; the result is RTN and says so.
  for (double value : {-1.0, std::nan("")}) {
    std::vector<double> bad = Identity(cols);
    for (double& v : bad) v *= value;
    const QuantizedMatrix q = QuantizeGptq(w, rows, cols, bad, GptqOptions{.bits = 4}, &report);
    EXPECT_TRUE(report.fell_back_to_rtn);
    ExpectSameQuantization(q, QuantizeRtn(w, rows, cols, 4, 128));
  }
}

// ---- AWQ ----

// Inputs with a few channels far larger than the rest, as LLM activations have.
std::vector<float> SalientInputs(int n, int cols, uint32_t seed) {
  std::vector<float> x = Gaussian(At(n, 0, cols), seed);
  for (int t = 0; t < n; ++t)
    for (int k : {5, 77, 130, 200}) x[At(t, k, cols)] *= 30.f;
  return x;
}

struct AwqCase {
  int n = 1024, cols = 256, rows = 96;
  std::vector<float> x = SalientInputs(n, cols, 71);
  std::vector<float> w = Gaussian(At(rows, 0, cols), 72);
  AwqLayer layer{w.data(), rows, true};

  AwqResult Run(const AwqOptions& options) const { return QuantizeAwq({&layer, 1}, cols, x, n, options); }
  double Error(const AwqResult& r) const {
    return OutputError(w, AwqEffectiveWeights(r.layers[0], r.input_scales), rows, cols, x, n);
  }
  double RtnError(int bits) const { return OutputError(w, QuantizeRtn(w, rows, cols, bits, 128).Dequantize(), rows, cols, x, n); }
};

TEST(AwqTest, BeatsRtnWithSalientChannels) {
  const AwqCase c;
  for (bool clip : {false, true}) {
    const AwqResult r = c.Run(AwqOptions{.bits = 3, .clip_search = clip});
    std::printf("clip %d: alpha %.2f, AWQ/RTN output error %.3f\n", clip, r.alpha, c.Error(r) / c.RtnError(3));
    EXPECT_GT(r.alpha, 0.0);
    EXPECT_LT(c.Error(r), 0.8 * c.RtnError(3));
    // The search's own error measure (via XᵀX) agrees with the naive one.
    EXPECT_NEAR(r.error, c.Error(r) / c.n, 1e-3 * r.error);
    EXPECT_NEAR(r.search_errors[0], c.RtnError(3) / c.n, 1e-3 * r.search_errors[0]);
  }
}

TEST(AwqTest, AlphaZeroIsRtn) {
  const AwqCase c;
  const AwqResult r = c.Run(AwqOptions{.bits = 3, .grid = 1, .clip_search = false});
  EXPECT_EQ(r.alpha, 0.0);
  EXPECT_EQ(r.input_scales, std::vector<float>(size_t(c.cols), 1.f));
  ExpectSameQuantization(r.layers[0], QuantizeRtn(c.w, c.rows, c.cols, 3, 128));
}

TEST(AwqTest, ClipSearchNeverIncreasesError) {
  const AwqCase c;
  for (int bits : {2, 3, 4}) {
    for (int grid : {1, 20}) {
      const AwqResult plain = c.Run(AwqOptions{.bits = bits, .grid = grid, .clip_search = false});
      const AwqResult clipped = c.Run(AwqOptions{.bits = bits, .grid = grid, .clip_search = true});
      EXPECT_EQ(plain.input_scales, clipped.input_scales);
      EXPECT_LE(c.Error(clipped), c.Error(plain) * (1 + 1e-6)) << "bits " << bits << " grid " << grid;
      EXPECT_LE(clipped.error, plain.error * (1 + 1e-6));
    }
  }
  // A layer marked clip = false is left unclipped.
  AwqCase no_clip;
  no_clip.layer.clip = false;
  ExpectSameQuantization(no_clip.Run(AwqOptions{.bits = 3}).layers[0],
                         no_clip.Run(AwqOptions{.bits = 3, .clip_search = false}).layers[0]);
}

TEST(AwqTest, SharedInputArrayApi) {
  const AwqCase c;
  const std::vector<float> w2 = Gaussian(At(64, 0, c.cols), 73);
  const std::vector<const float*> weights = {c.w.data(), w2.data()};
  const std::vector<int> rows = {c.rows, 64};
  std::vector<float> s;
  const std::vector<QuantizedMatrix> q = QuantizeAwq(weights, rows, c.cols, c.x, c.n, AwqOptions{.bits = 4}, &s);
  ASSERT_EQ(q.size(), 2u);
  ASSERT_EQ(s.size(), size_t(c.cols));
  EXPECT_EQ(q[1].rows, 64);
  const std::vector<float> eff = AwqEffectiveWeights(q[1], s);
  const std::vector<float> d = q[1].Dequantize();
  for (size_t i = 0; i < eff.size(); ++i) EXPECT_EQ(eff[i], d[i] / s[i % size_t(c.cols)]);
  EXPECT_LT(OutputError(w2, eff, 64, c.cols, c.x, c.n),
            OutputError(w2, QuantizeRtn(w2, 64, c.cols, 4, 128).Dequantize(), 64, c.cols, c.x, c.n));
}

}  // namespace
}  // namespace grinqh
