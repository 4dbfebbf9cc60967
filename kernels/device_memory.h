// Device memory for host code that includes no CUDA headers (tests, benchmarks, the
// backend's loader): allocation, copies, fills and a stream sync. Failures throw
// std::runtime_error with the CUDA error string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace grinqh::cuda {

void* DeviceAlloc(size_t bytes);
void DeviceFree(void* p);
void CopyToDevice(void* dst, const void* src, size_t bytes);
void CopyToHost(void* dst, const void* src, size_t bytes);
void FillBytes(void* dst, int byte, size_t bytes);  // e.g. 0xFF: NaN floats, to poison outputs
void Synchronize();                                 // the device; throws the first pending error

// An owning, typed device array.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n), p_(static_cast<T*>(DeviceAlloc(n * sizeof(T)))) {}
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { CopyToDevice(p_, host.data(), host.size() * sizeof(T)); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : n_(o.n_), p_(o.p_) { o.n_ = 0, o.p_ = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(n_, o.n_), std::swap(p_, o.p_);
    return *this;
  }
  ~DeviceArray() { DeviceFree(p_); }

  T* get() const { return p_; }
  size_t size() const { return n_; }
  std::vector<T> ToHost() const {
    std::vector<T> out(n_);
    CopyToHost(out.data(), p_, n_ * sizeof(T));
    return out;
  }
  void Poison() { FillBytes(p_, 0xFF, n_ * sizeof(T)); }

 private:
  size_t n_ = 0;
  T* p_ = nullptr;
};

}  // namespace grinqh::cuda
