// bf16 → fp32 widening on the GPU: the first step of the full-depth prefill path
// (dequantize, then a dense cuBLAS GEMM). Plain C++ interface over device pointers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace grinqh::cuda {

// dst[i] = float(src[i]) for i < n, on the default stream. Returns a CUDA error string
// or nullptr on success.
const char* WidenBf16(const uint16_t* src_device, float* dst_device, size_t n);

// Copies host bf16 data to the device, widens it there and copies the floats back:
// a self-contained round trip for tests. Returns nullptr on success.
const char* WidenBf16OnDevice(const uint16_t* src_host, float* dst_host, size_t n);

}  // namespace grinqh::cuda
