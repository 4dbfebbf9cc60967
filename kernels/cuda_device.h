// What CUDA devices this process can use. Plain C++: callers need no CUDA headers.
#pragma once

#include <string>

namespace grinqh::cuda {

struct DeviceInfo {
  int count = 0;            // 0 when there is no GPU or no driver
  std::string name;         // of device 0
  int compute_capability = 0;  // major * 10 + minor, of device 0
  std::string error;        // why count is 0, when the runtime said
};

DeviceInfo QueryDevices();

}  // namespace grinqh::cuda
