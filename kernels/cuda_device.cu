#include <cuda_runtime.h>

#include "kernels/cuda_device.h"

namespace grinqh::cuda {

DeviceInfo QueryDevices() {
  DeviceInfo info;
  if (cudaError_t err = cudaGetDeviceCount(&info.count); err != cudaSuccess) {
    info.count = 0;
    info.error = cudaGetErrorString(err);
    return info;
  }
  if (info.count > 0) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
      info.name = prop.name;
      info.compute_capability = prop.major * 10 + prop.minor;
    }
  }
  return info;
}

}  // namespace grinqh::cuda
