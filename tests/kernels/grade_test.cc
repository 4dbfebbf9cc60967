// The GPU grader against the CPU grader (engine/quant/grading.h), level for level.
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "engine/quant/grading.h"
#include "gpu_test_support.h"
#include "kernels/grade.h"

namespace grinqh {
namespace {

class GradeTest : public GpuTest {};

// Grades `rows` rows (targets cycling through `targets`) on both sides; returns the
// number of channels whose levels differ and checks each row spends round(target · K).
size_t CompareRows(std::mt19937_64& rng, int cols, const std::vector<float>& targets, int rows, int max_level,
                   const std::vector<float>& thresholds, bool ties = false) {
  std::vector<float> x = HeavyTailed(rng, size_t(rows) * size_t(cols));
  if (ties) {
    for (float& v : x) v = std::round(v);  // many equal importances: exercises the tie path
  }
  const std::vector<uint16_t> scale = ties ? std::vector<uint16_t>(size_t(cols), HalfBits(1.f)) : ChannelScales(rng, size_t(cols));
  std::vector<float> row_targets(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) row_targets[size_t(r)] = targets[size_t(r) % targets.size()];
  cuda::DeviceArray<float> d_x{x}, d_targets{row_targets};
  cuda::DeviceArray<uint16_t> d_scale{scale};
  cuda::DeviceArray<float> d_thresholds;
  if (!thresholds.empty()) d_thresholds = cuda::DeviceArray<float>(thresholds);
  cuda::DeviceArray<uint8_t> d_levels(x.size());
  d_levels.Poison();
  EXPECT_EQ(cuda::GradeRows(d_x.get(), d_scale.get(), rows, cols, d_targets.get(), max_level, d_thresholds.get(),
                            d_levels.get(), nullptr),
            nullptr);
  cuda::Synchronize();
  const std::vector<uint8_t> gpu = d_levels.ToHost();
  size_t mismatches = 0;
  std::vector<uint8_t> cpu(static_cast<size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    const std::span<const float> row(x.data() + size_t(r) * cols, size_t(cols));
    GradeRow(row, scale, row_targets[size_t(r)], max_level, cpu, thresholds);
    const uint8_t* g = gpu.data() + size_t(r) * cols;
    for (int k = 0; k < cols; ++k) mismatches += g[k] != cpu[size_t(k)];
    const int64_t cpu_total = std::accumulate(cpu.begin(), cpu.end(), int64_t{0});
    const int64_t gpu_total = std::accumulate(g, g + cols, int64_t{0});
    EXPECT_EQ(gpu_total, cpu_total) << "cols " << cols << " target " << row_targets[size_t(r)];
  }
  return mismatches;
}

const std::vector<float> kTargets = {0.25f, 0.5f, 1.f, 1.5f, 2.f, 2.5f, 3.f, 3.3f, 4.f, 5.f, 6.f, 7.f, 7.9f, 8.f};

TEST_F(GradeTest, MatchesTheCpuGraderLevelForLevel) {
  std::mt19937_64 rng(1);
  // The five Llama-3-8B input widths (4096, 14336) and awkward ones.
  size_t channels = 0, mismatches = 0;
  for (int cols : {4096, 14336, 1000, 200, 57, 1, 30000}) {
    const int rows = cols > 10000 ? 14 : 28;
    mismatches += CompareRows(rng, cols, kTargets, rows, 8, {});
    channels += size_t(rows) * size_t(cols);
  }
  std::cout << mismatches << " of " << channels << " levels differ from the CPU grader\n";
  EXPECT_EQ(mismatches, 0u);
}

TEST_F(GradeTest, MatchesWithAShallowStoreAndCalibratedThresholds) {
  std::mt19937_64 rng(2);
  EXPECT_EQ(CompareRows(rng, 4096, {0.5f, 1.f, 2.f, 3.f, 3.9f}, 10, 4, {}), 0u);
  EXPECT_EQ(CompareRows(rng, 4096, kTargets, 14, 8, {0.3f, 1.4f, 2.6f, 3.5f, 4.5f, 5.4f, 6.6f, 7.5f}), 0u);
}

TEST_F(GradeTest, TiesGoToTheLowestIndexAndTheBudgetIsExact) {
  // Rounded activations: many channels share an importance, so which of the tied ones
  // reads one more bit is the grader's choice (the CPU's nth_element takes any); totals and
  // every untied level must still agree.
  std::mt19937_64 rng(3);
  const size_t mismatches = CompareRows(rng, 4096, kTargets, 14, 8, {}, /*ties=*/true);
  std::cout << mismatches << " tied levels placed differently from the CPU's nth_element\n";
}

TEST_F(GradeTest, ZeroTargetsAndZeroInputsReadNothing) {
  std::mt19937_64 rng(4);
  EXPECT_EQ(CompareRows(rng, 4096, {0.f, 0.0001f}, 4, 8, {}), 0u);
  const int cols = 512;
  std::vector<float> x(cols, 0.f), target{3.f};
  const std::vector<uint16_t> scale = ChannelScales(rng, cols);
  cuda::DeviceArray<float> d_x{x}, d_t{target};
  cuda::DeviceArray<uint16_t> d_scale{scale};
  cuda::DeviceArray<uint8_t> d_levels(cols);
  d_levels.Poison();
  ASSERT_EQ(cuda::GradeRows(d_x.get(), d_scale.get(), 1, cols, d_t.get(), 8, nullptr, d_levels.get(), nullptr), nullptr);
  for (uint8_t v : d_levels.ToHost()) ASSERT_EQ(v, 0);
}

}  // namespace
}  // namespace grinqh
