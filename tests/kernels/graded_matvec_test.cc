// The GPU graded matvec, its full-depth and small-batch forms and the bf16 dequantization
// against the CPU engine: the bit-plane product (engine/backends/cpu/bit_plane_matvec.h)
// and DequantizeLevel (engine/quant/bit_planes.h), on random stores re-laid for the GPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/backends/cpu/bit_plane_matvec.h"
#include "engine/quant/grading.h"
#include "gpu_test_support.h"
#include "kernels/graded_matvec.h"

namespace grinqh {
namespace {

class GradedMatVecTest : public GpuTest {};

// The largest |gpu − cpu| over rows, relative to the rows' RMS. The GPU product codes each
// activation as a 16-bit integer relative to the largest |x| its group reads (kernels/
// read_plan.h), so an entry's error is up to max|x| / 65278 where the CPU keeps fp32; with
// heavy-tailed x (one channel far above the rest) that is the bound's main term.
constexpr double kMaxRelativeError = 2e-3;

struct ErrorStat {
  double worst = 0;
  void Add(std::span<const float> gpu, std::span<const float> cpu) {
    double sq = 0;
    for (float v : cpu) sq += double(v) * v;
    const double rms = std::sqrt(sq / double(std::max<size_t>(cpu.size(), 1))) + 1e-30;
    for (size_t r = 0; r < cpu.size(); ++r) {
      ASSERT_TRUE(std::isfinite(gpu[r])) << "row " << r << " not written";
      worst = std::max(worst, std::abs(double(gpu[r]) - cpu[r]) / rms);
    }
  }
};

// Rows to check on the CPU: all of a small matrix; of a large one, its first 512, the 512
// around the middle and the last 1,000 (the last tile), whole file tiles each.
std::vector<std::pair<int, int>> CheckedRows(const BitPlaneShape& s) {
  if (s.rows <= 2048) return {{0, s.rows}};
  const int tr = s.tile_rows;
  const int mid = (s.rows / 2) / tr * tr, last = std::max(0, s.rows - 1000) / tr * tr;
  return {{0, 512}, {mid, 512}, {last, s.rows - last}};
}

// levels (0..planes) from the CPU grader on heavy-tailed x.
std::vector<uint8_t> Levels(std::mt19937_64& rng, const std::vector<float>& x, int planes, float target) {
  std::vector<uint8_t> levels(x.size());
  GradeRow(x, ChannelScales(rng, x.size()), target, planes, levels);
  return levels;
}

void CheckBatch1(std::mt19937_64& rng, const TestStore& store, const std::vector<float>& targets, ErrorStat& err) {
  const BitPlaneShape& s = store.shape;
  const std::vector<float> x = HeavyTailed(rng, size_t(s.cols));
  cuda::DeviceArray<float> d_x{x}, d_y(size_t(s.rows));
  cuda::DeviceArray<uint8_t> d_levels(size_t(s.cols));
  cuda::DeviceArray<uint8_t> workspace(cuda::GradedMatVecWorkspaceBytes(store.gpu().shape));
  cuda::FillBytes(workspace.get(), 0, workspace.size());
  for (float target : targets) {
    // A negative target: full depth through the uniform-level path (no levels array).
    const bool uniform = target < 0;
    std::vector<uint8_t> levels = uniform ? std::vector<uint8_t>(size_t(s.cols), uint8_t(s.stored_planes))
                                          : Levels(rng, x, s.stored_planes, target);
    cuda::CopyToDevice(d_levels.get(), levels.data(), levels.size());
    d_y.Poison();
    ASSERT_EQ(cuda::GradedMatVec(store.gpu(), d_x.get(), uniform ? nullptr : d_levels.get(), s.stored_planes, d_y.get(),
                                 workspace.get(), nullptr),
              nullptr);
    const std::vector<float> y = d_y.ToHost();
    for (auto [row0, rows] : CheckedRows(s)) {
      std::vector<float> want(static_cast<size_t>(rows));
      cpu::BitPlaneMatVec(store.RowsView(row0, rows), x.data(), levels.data(), want.data());
      err.Add(std::span<const float>(y.data() + row0, size_t(rows)), want);
    }
  }
}

TEST_F(GradedMatVecTest, LlamaShapesMatchTheCpuProduct) {
  std::mt19937_64 rng(10);
  ErrorStat err;
  struct Shape {
    int rows, cols;
  };
  // qkv, o, gate_up, down, lm_head.
  for (Shape sh : {Shape{6144, 4096}, Shape{4096, 4096}, Shape{28672, 4096}, Shape{4096, 14336}, Shape{128256, 4096}}) {
    const TestStore store = MakeTestStore(rng, sh.rows, sh.cols, 128, 256);
    CheckBatch1(rng, store, {2.f, 3.f, 4.f, 6.f, 8.f, -1.f}, err);
    if (HasFatalFailure()) return;
  }
  std::cout << "max error / row RMS: " << err.worst << "\n";
  EXPECT_LT(err.worst, kMaxRelativeError);
}

TEST_F(GradedMatVecTest, AwkwardShapesAndEveryTarget) {
  std::mt19937_64 rng(11);
  ErrorStat err;
  struct Case {
    int rows, cols, group, tile_rows;
  };
  for (Case c : {Case{1000, 1000, 128, 64},  // rows not a multiple of the tile, K of the group
                 Case{777, 200, 128, 64},    // rows not a multiple of 16, K < 256
                 Case{520, 96, 64, 256}, Case{8, 3000, 256, 64}, Case{3000, 64, 32, 64}, Case{513, 4096, 128, 64}}) {
    const TestStore store = MakeTestStore(rng, c.rows, c.cols, c.group, c.tile_rows);
    CheckBatch1(rng, store, {0.25f, 0.5f, 1.f, 1.5f, 2.f, 2.5f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, -1.f}, err);
    if (HasFatalFailure()) return;
  }
  std::cout << "max error / row RMS: " << err.worst << "\n";
  EXPECT_LT(err.worst, kMaxRelativeError);
}

TEST_F(GradedMatVecTest, ShallowStoresAndBaselineWidths) {
  std::mt19937_64 rng(12);
  ErrorStat err;
  // A GRINQH store keeping 4 of 8 planes; RTN/GPTQ/AWQ stores of 2, 3 and 4-bit codes.
  CheckBatch1(rng, MakeTestStore(rng, 1500, 1024, 128, 64, 8, 4), {1.f, 2.f, 3.f, 4.f, -1.f}, err);
  for (int bits : {2, 3, 4}) CheckBatch1(rng, MakeTestStore(rng, 2048, 4096, 128, 64, bits), {-1.f}, err);
  std::cout << "max error / row RMS: " << err.worst << "\n";
  EXPECT_LT(err.worst, kMaxRelativeError);
}

TEST_F(GradedMatVecTest, SmallBatchesWithMixedTargets) {
  std::mt19937_64 rng(13);
  ErrorStat err;
  const std::vector<float> mix = {2.f, 3.f, 4.f, 6.f, 8.f, 0.25f, 2.5f, 3.f};
  for (auto [rows, cols] : {std::pair{6144, 4096}, std::pair{1000, 1000}, std::pair{4096, 14336}}) {
    const TestStore store = MakeTestStore(rng, rows, cols, 128, 64);
    const BitPlaneShape& s = store.shape;
    for (int batch : {2, 3, 5, 16}) {
      std::vector<float> x;
      std::vector<uint8_t> levels;
      for (int b = 0; b < batch; ++b) {
        const std::vector<float> xb = HeavyTailed(rng, size_t(cols));
        const std::vector<uint8_t> lb = Levels(rng, xb, 8, mix[size_t(b) % mix.size()]);
        x.insert(x.end(), xb.begin(), xb.end());
        levels.insert(levels.end(), lb.begin(), lb.end());
      }
      cuda::DeviceArray<float> d_x{x}, d_y(size_t(batch) * size_t(rows));
      cuda::DeviceArray<uint8_t> d_levels{levels};
      cuda::DeviceArray<uint8_t> workspace(cuda::GradedMatVecWorkspaceBytes(store.gpu().shape, batch));
      cuda::FillBytes(workspace.get(), 0, workspace.size());
      d_y.Poison();
      ASSERT_EQ(cuda::GradedMatVecBatch(store.gpu(), batch, d_x.get(), d_levels.get(), d_y.get(), workspace.get(), nullptr),
                nullptr);
      const std::vector<float> y = d_y.ToHost();
      for (int b = 0; b < batch; ++b) {
        for (auto [row0, n] : CheckedRows(s)) {
          std::vector<float> want(static_cast<size_t>(n));
          cpu::BitPlaneMatVec(store.RowsView(row0, n), x.data() + size_t(b) * cols, levels.data() + size_t(b) * cols,
                              want.data());
          err.Add(std::span<const float>(y.data() + size_t(b) * rows + row0, size_t(n)), want);
        }
      }
    }
  }
  std::cout << "max error / row RMS: " << err.worst << "\n";
  EXPECT_LT(err.worst, kMaxRelativeError);
}

// bf16, round to nearest even, as the GPU's __float2bfloat16_rn (finite values).
uint16_t Bf16Bits(float v) {
  const uint32_t u = std::bit_cast<uint32_t>(v);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

TEST_F(GradedMatVecTest, DequantizeToBf16MatchesTheCpuDequantization) {
  std::mt19937_64 rng(14);
  struct Case {
    int rows, cols, group, code_bits, planes;
  };
  for (Case c : {Case{1000, 1000, 128, 8, 8}, Case{777, 200, 64, 8, 8}, Case{1024, 512, 128, 8, 5},
                 Case{600, 384, 128, 3, 3}}) {
    const TestStore store = MakeTestStore(rng, c.rows, c.cols, c.group, 64, c.code_bits, c.planes);
    cuda::DeviceArray<uint16_t> d_out(size_t(c.rows) * size_t(c.cols));
    d_out.Poison();
    ASSERT_EQ(cuda::DequantizeToBf16(store.gpu(), d_out.get(), nullptr), nullptr);
    const std::vector<uint16_t> gpu = d_out.ToHost();
    auto cpu = DequantizeLevel(store.view(), c.planes);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    for (size_t i = 0; i < gpu.size(); ++i) ASSERT_EQ(gpu[i], Bf16Bits((*cpu)[i])) << "element " << i;
  }
}

}  // namespace
}  // namespace grinqh
