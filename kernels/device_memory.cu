#include "kernels/device_memory.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace grinqh::cuda {
namespace {

void Check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

}  // namespace

void* DeviceAlloc(size_t bytes) {
  void* p = nullptr;
  if (bytes > 0) Check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}
void DeviceFree(void* p) {
  if (p != nullptr) cudaFree(p);
}
void CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) Check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
}
void CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) Check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}
void FillBytes(void* dst, int byte, size_t bytes) {
  if (bytes > 0) Check(cudaMemset(dst, byte, bytes), "cudaMemset");
}
void Synchronize() { Check(cudaDeviceSynchronize(), "kernel"); }

}  // namespace grinqh::cuda
