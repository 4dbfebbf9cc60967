#include <cuda_runtime.h>

#include "kernels/widen.h"

namespace grinqh::cuda {
namespace {

// bf16 is the top half of an fp32: widening is a 16-bit shift (grid-stride loop).
__global__ void WidenBf16Kernel(const uint16_t* __restrict__ src, float* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    dst[i] = __uint_as_float(uint32_t(src[i]) << 16);
  }
}

}  // namespace

const char* WidenBf16(const uint16_t* src_device, float* dst_device, size_t n) {
  if (n == 0) return nullptr;
  const int threads = 256;
  const size_t blocks = (n + threads - 1) / threads;
  WidenBf16Kernel<<<unsigned(blocks < 65535 ? blocks : 65535), threads>>>(src_device, dst_device, n);
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

const char* WidenBf16OnDevice(const uint16_t* src_host, float* dst_host, size_t n) {
  uint16_t* src = nullptr;
  float* dst = nullptr;
  const char* error = nullptr;
  auto check = [&](cudaError_t err) {
    if (err != cudaSuccess && error == nullptr) error = cudaGetErrorString(err);
    return error == nullptr;
  };
  if (check(cudaMalloc(&src, n * sizeof(uint16_t))) && check(cudaMalloc(&dst, n * sizeof(float))) &&
      check(cudaMemcpy(src, src_host, n * sizeof(uint16_t), cudaMemcpyHostToDevice))) {
    if (const char* launch = WidenBf16(src, dst, n)) error = launch;
    if (error == nullptr) check(cudaMemcpy(dst_host, dst, n * sizeof(float), cudaMemcpyDeviceToHost));
  }
  cudaFree(src);
  cudaFree(dst);
  return error;
}

}  // namespace grinqh::cuda
