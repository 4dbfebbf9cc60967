// The CPU's graded decode product against the plain reference: dequantize every channel
// at its assigned level (engine/quant/bit_planes.h), then a dense product in double.
#include "engine/backends/cpu/bit_plane_matvec.h"

#include <cmath>
#include <random>
#include <vector>

#include "engine/quant/quant.h"
#include "engine/base/half.h"
#include "engine/base/thread_pool.h"
#include "engine/backends/cpu/cpu_ops.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

struct Case {
  int rows, cols, tile_rows, group_size, max_bits;
};

TEST(BitPlaneMatVecTest, MatchesDequantizeThenDenseProduct) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  ThreadPool pool(2);
  for (const Case& c : {Case{256, 512, 256, 128, 8}, Case{100, 200, 64, 64, 8}, Case{300, 130, 128, 32, 4},
                        Case{512, 256, 256, 128, 8}}) {
    std::vector<float> w(size_t(c.rows) * size_t(c.cols));
    for (float& v : w) v = 0.05f * normal(rng);
    const quant::QuantizedMatrix q = quant::QuantizeRtn(w, c.rows, c.cols, 8, c.group_size);
    auto packed = PackBitPlanes(q, c.tile_rows, c.max_bits);
    ASSERT_TRUE(packed.ok()) << packed.status();
    const BitPlaneView view = packed->view();

    std::vector<float> x(size_t(c.cols));
    for (float& v : x) v = normal(rng);
    for (int trial = 0; trial < 3; ++trial) {
      std::vector<uint8_t> levels(size_t(c.cols));
      std::vector<int> int_levels(size_t(c.cols));
      for (size_t k = 0; k < levels.size(); ++k) {
        levels[k] = uint8_t(rng() % uint32_t(c.max_bits + 1));
        if (trial == 1 && k < levels.size() / 2) levels[k] = 0;  // whole groups skipped
        if (trial == 2) levels[k] = uint8_t(c.max_bits);         // full stored depth
        int_levels[k] = levels[k];
      }
      auto dense = DequantizeLevels(view, int_levels);
      ASSERT_TRUE(dense.ok()) << dense.status();
      std::vector<float> y(size_t(c.rows));
      cpu::BitPlaneMatVec(pool, view, x.data(), levels.data(), y.data());
      double err = 0, norm = 0;
      for (int r = 0; r < c.rows; ++r) {
        double want = 0;
        for (int k = 0; k < c.cols; ++k) want += double((*dense)[size_t(r) * size_t(c.cols) + size_t(k)]) * x[size_t(k)];
        err += (y[size_t(r)] - want) * (y[size_t(r)] - want);
        norm += want * want;
      }
      EXPECT_LT(std::sqrt(err / norm), 1e-5) << c.rows << "x" << c.cols << " trial " << trial;
    }
  }
}

TEST(BitPlaneMatVecTest, BytesReadCountOnlyTheNeededPlanesAndScales) {
  const BitPlaneShape shape{.rows = 512, .cols = 256, .tile_rows = 256, .stored_planes = 8, .group_size = 128};
  std::vector<uint8_t> levels(256, 0);
  EXPECT_EQ(cpu::CountReadBytes(shape, levels.data()).planes, 0u);
  EXPECT_EQ(cpu::CountReadBytes(shape, levels.data()).params, 0u);
  levels[0] = 3;  // 3 planes of 32 bytes in each of 2 tiles, plus group 0's fp16 scale and byte zero for 512 rows
  EXPECT_EQ(cpu::CountReadBytes(shape, levels.data()).planes, 3u * 32 * 2);
  EXPECT_EQ(cpu::CountReadBytes(shape, levels.data()).params, 512u * 3);
}

// The per-row stats behind eval's effective bits (ForwardStats) see exactly what
// CountReadBytes says each graded row reads, whether the rows run as decode (one) or batched.
TEST(BitPlaneMatVecTest, GradedRowsCountWhatTheyRead) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const int rows = 300, cols = 200;
  std::vector<float> w(size_t(rows) * cols);
  for (float& v : w) v = normal(rng);
  auto packed = PackBitPlanes(quant::QuantizeRtn(w, rows, cols, 8, 64), 128, 8);
  ASSERT_TRUE(packed.ok()) << packed.status();
  const std::vector<uint16_t> channel_scale(cols, HalfBits(1.f));
  PlaneWeights layer;
  layer.planes = packed->view();
  layer.channel_scale = channel_scale;
  std::vector<float> x(2 * size_t(cols)), y(2 * size_t(rows));
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> a(cols), b(cols);
  for (int k = 0; k < cols; ++k) a[size_t(k)] = uint8_t(k % 9), b[size_t(k)] = k < 64 ? 0 : 2;  // b skips group 0
  // Row 0 reads levels a, row 1 levels b, whatever the target.
  const cpu::RowGrader grader = [&](const PlaneWeights&, std::span<const float> row, float, std::span<uint8_t> levels) {
    const std::vector<uint8_t>& want = row.data() == x.data() ? a : b;
    std::copy(want.begin(), want.end(), levels.begin());
  };
  const std::vector<float> targets = {3.f, 3.f};
  ThreadPool pool(2);
  for (int batch : {1, 2}) {
    std::vector<ForwardStats> stats(2);
    if (batch == 2) {
      cpu::GradedMatMul(pool, x.data(), 2, layer, targets.data(), y.data(), grader, stats.data());
    } else {
      cpu::GradedMatMul(pool, x.data(), 1, layer, targets.data(), y.data(), grader, &stats[0]);
      cpu::GradedMatMul(pool, x.data() + cols, 1, layer, targets.data(), y.data() + rows, grader, &stats[1]);
    }
    for (int r = 0; r < 2; ++r) {
      const cpu::ReadBytes want = cpu::CountReadBytes(packed->shape, (r == 0 ? a : b).data());
      uint64_t planes = 0;
      for (uint8_t level : r == 0 ? a : b) planes += level;
      EXPECT_EQ(stats[r].weight_bytes, want.planes + want.params) << "batch " << batch << " row " << r;
      EXPECT_EQ(stats[r].plane_bytes, planes * 16 * 3);  // 16 bytes a plane per tile of 128 rows, 3 tiles
      EXPECT_EQ(stats[r].weights, uint64_t(rows) * cols);
      EXPECT_EQ(stats[r].graded_channels, uint64_t(cols));
      EXPECT_EQ(stats[r].graded_products, 1u);
    }
  }
}

// A fixed-width baseline stored as a store of N-bit codes reads back, at its full depth,
// exactly the weights its own codes give, through both readers.
TEST(BitPlaneMatVecTest, FixedWidthCodesReadBackExactlyAtFullDepth) {
  std::mt19937 rng(8);
  std::normal_distribution<float> normal;
  const int rows = 70, cols = 256;
  std::vector<float> w(size_t(rows) * cols);
  for (float& v : w) v = 0.03f * normal(rng);
  for (int bits : {2, 3, 4, 8}) {
    const quant::QuantizedMatrix q = quant::QuantizeRtn(w, rows, cols, bits, 128);
    auto packed = PackBitPlanes(q, 64);
    ASSERT_TRUE(packed.ok()) << packed.status();
    EXPECT_EQ(packed->shape.stored_planes, bits);
    EXPECT_EQ(packed->shape.code_bits, bits);
    auto read = DequantizeLevel(packed->view(), bits);
    ASSERT_TRUE(read.ok()) << read.status();
    const std::vector<float> want = q.Dequantize();
    EXPECT_EQ(*read, want) << bits << " bits";
    std::vector<float> x(cols), y(rows), y_want(rows, 0.f);
    for (float& v : x) v = normal(rng);
    const std::vector<uint8_t> full(cols, static_cast<uint8_t>(bits));
    cpu::BitPlaneMatVec(packed->view(), x.data(), full.data(), y.data());
    for (int r = 0; r < rows; ++r) {
      for (int k = 0; k < cols; ++k) y_want[size_t(r)] += want[size_t(r) * cols + size_t(k)] * x[size_t(k)];
    }
    for (int r = 0; r < rows; ++r) EXPECT_NEAR(y[size_t(r)], y_want[size_t(r)], 1e-4f) << bits << " bits, row " << r;
  }
}

}  // namespace
}  // namespace grinqh
