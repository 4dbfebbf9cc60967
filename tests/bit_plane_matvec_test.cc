// The CPU's graded decode product against the plain reference: dequantize every channel
// at its assigned level (engine/bit_planes.h), then a dense product in double.
#include "engine/bit_plane_matvec.h"

#include <cmath>
#include <random>
#include <vector>

#include "engine/quant.h"
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
  EXPECT_EQ(cpu::BitPlaneBytesRead(shape, levels.data()), 0u);
  levels[0] = 3;  // 3 planes of 32 bytes in each of 2 tiles, plus group 0's scale and zero for 512 rows
  EXPECT_EQ(cpu::BitPlaneBytesRead(shape, levels.data()), 3u * 32 * 2 + 512 * 4);
}

}  // namespace
}  // namespace grinqh
