// Safetensors parsing: an arbitrary file opened as a .safetensors checkpoint. Whatever it
// accepts must describe tensors that lie inside the file, so every byte of every tensor
// is read here (a view past the mapping faults; ASan sees the rest).
#include <cstddef>
#include <cstdint>

#include "engine/model/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  const fuzz::MemFile file(data, size);
  auto opened = SafetensorsFile::Open(file.path());
  if (!opened.ok()) return 0;
  unsigned sum = 0;
  for (const auto& [name, tensor] : (*opened)->tensors()) {
    GRINQH_FUZZ_CHECK(name == tensor.name);
    GRINQH_FUZZ_CHECK(tensor.nbytes == static_cast<size_t>(tensor.numel()) * DTypeSize(tensor.dtype));
    for (size_t i = 0; i < tensor.nbytes; ++i) sum += static_cast<unsigned>(tensor.data[i]);
  }
  // Keeps the reads from being optimized away.
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
