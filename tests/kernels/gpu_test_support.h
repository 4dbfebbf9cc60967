// Shared by the GPU kernel tests: a device check that skips, random bit-plane stores in the
// file's layout (with their GPU re-lay uploaded), and heavy-tailed activations.
#pragma once

#include <cmath>
#include <cstdint>
#include <iostream>
#include <random>
#include <vector>

#include "engine/base/half.h"
#include "engine/quant/bit_planes.h"
#include "gtest/gtest.h"
#include "kernels/cuda_device.h"
#include "kernels/device_memory.h"
#include "kernels/gpu_bit_planes.h"

namespace grinqh {

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const cuda::DeviceInfo info = cuda::QueryDevices();
    if (info.count == 0) GTEST_SKIP() << "no CUDA device (" << info.error << ")";
  }
};

// A store of random codes in the file's layout (any bytes are valid codes), fp16 scales in
// [2^-9, 2^-6] and random zero codes; and the same store re-laid and uploaded.
struct TestStore {
  BitPlaneShape shape;
  std::vector<uint8_t> planes, zeros;
  std::vector<uint16_t> scales;
  cuda::DeviceArray<uint8_t> gpu_planes, gpu_zeros;
  cuda::DeviceArray<uint16_t> gpu_scales;

  BitPlaneView view() const { return {shape, planes.data(), scales.data(), zeros.data()}; }
  cuda::GpuPlaneMatrix gpu() const {
    return {cuda::GpuShapeOf(file()), gpu_planes.get(), gpu_scales.get(), gpu_zeros.get()};
  }
  cuda::FilePlaneStore file() const {
    return {shape.rows,       shape.cols,    shape.tile_rows,  shape.stored_planes, shape.group_size,
            shape.code_bits, planes.data(), scales.data(), zeros.data()};
  }
  // The file view of rows [row0, row0 + rows) where row0 is a multiple of the file's tile.
  BitPlaneView RowsView(int row0, int rows) const {
    BitPlaneShape s = shape;
    s.rows = rows;
    const size_t params = size_t(row0) * size_t(shape.groups());
    return {s, planes.data() + shape.ChannelOffset(row0 / shape.tile_rows, 0), scales.data() + params,
            zeros.data() + params};
  }
};

inline TestStore MakeTestStore(std::mt19937_64& rng, int rows, int cols, int group_size, int tile_rows = 64,
                               int code_bits = 8, int stored_planes = 0) {
  TestStore t;
  t.shape = {rows, cols, tile_rows, stored_planes ? stored_planes : code_bits, group_size, code_bits};
  t.planes.resize(t.shape.planes_size());
  for (size_t i = 0; i < t.planes.size(); i += 8) {
    const uint64_t v = rng();
    for (size_t b = 0; b < 8 && i + b < t.planes.size(); ++b) t.planes[i + b] = uint8_t(v >> (8 * b));
  }
  t.scales.resize(t.shape.params_size());
  t.zeros.resize(t.shape.params_size());
  std::uniform_real_distribution<float> log_scale(-9.f, -6.f);
  for (size_t i = 0; i < t.scales.size(); ++i) {
    t.scales[i] = HalfBits(std::exp2(log_scale(rng)));
    t.zeros[i] = uint8_t(rng() % (1u << code_bits));
  }
  const cuda::GpuPlaneShape g = cuda::GpuShapeOf(t.file());
  std::vector<uint8_t> planes(g.planes_size()), zeros(g.params_size());
  std::vector<uint16_t> scales(g.params_size());
  cuda::RelayToGpuLayout(t.file(), planes.data(), scales.data(), zeros.data());
  t.gpu_planes = cuda::DeviceArray<uint8_t>(planes);
  t.gpu_scales = cuda::DeviceArray<uint16_t>(scales);
  t.gpu_zeros = cuda::DeviceArray<uint8_t>(zeros);
  return t;
}

// Heavy-tailed activations: Student-t with 3 degrees of freedom.
inline std::vector<float> HeavyTailed(std::mt19937_64& rng, size_t n) {
  std::student_t_distribution<float> t(3.f);
  std::vector<float> x(n);
  for (float& v : x) v = t(rng);
  return x;
}

// Per-channel statistics c_k as fp16 (e.g. column norms), in [0.5, 2].
inline std::vector<uint16_t> ChannelScales(std::mt19937_64& rng, size_t n) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> c(n);
  for (uint16_t& v : c) v = HalfBits(std::exp2(u(rng)));
  return c;
}

}  // namespace grinqh
