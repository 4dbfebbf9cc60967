// GPU kernels against the CPU engine's own conversions. Skips without a CUDA device.
#include <random>
#include <vector>

#include "engine/model/weights.h"
#include "gtest/gtest.h"
#include "kernels/cuda_device.h"
#include "kernels/widen.h"

namespace grinqh {
namespace {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const cuda::DeviceInfo info = cuda::QueryDevices();
    if (info.count == 0) GTEST_SKIP() << "no CUDA device (" << info.error << ")";
    std::cout << "device 0: " << info.name << ", sm_" << info.compute_capability << "\n";
  }
};

TEST_F(CudaTest, WidenBf16MatchesTheCpuConversion) {
  // Every bf16 bit pattern, so signs, subnormals, infinities and NaNs are all covered.
  std::vector<uint16_t> bits(65536);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = uint16_t(i);
  std::vector<float> gpu(bits.size()), cpu(bits.size());
  ASSERT_EQ(cuda::WidenBf16OnDevice(bits.data(), gpu.data(), bits.size()), nullptr);
  WidenToFloat(DType::kBF16, reinterpret_cast<const std::byte*>(bits.data()), cpu.data(), bits.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(gpu[i]), std::bit_cast<uint32_t>(cpu[i])) << "bf16 bits " << i;
  }
}

}  // namespace
}  // namespace grinqh
