// .grinqh reading: an arbitrary file opened as a GRINQH model file, structure first
// (GrinqhFile), then everything a model load reads from it (ReadGrinqhSummary, and
// LoadGrinqhFiles: config, tokenizer, bit planes, schedules). Accepted tensors are read
// byte by byte, so one that lies outside the file is caught.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/model/grinqh_file.h"
#include "engine/model/grinqh_model.h"
#include "engine/model/model_files.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace grinqh;
  const fuzz::MemFile file(data, size);
  auto opened = GrinqhFile::Open(file.path(), /*verify_checksums=*/true);
  if (!opened.ok()) return 0;
  const GrinqhFile& grinqh = **opened;
  unsigned sum = 0;
  for (const auto& [name, tensor] : grinqh.tensors()) {
    GRINQH_FUZZ_CHECK(tensor.nbytes == static_cast<size_t>(tensor.numel()) * DTypeSize(tensor.dtype));
    GRINQH_FUZZ_CHECK(reinterpret_cast<uintptr_t>(tensor.data) % kGrinqhTensorAlignment == 0);
    for (size_t i = 0; i < tensor.nbytes; ++i) sum += static_cast<unsigned>(tensor.data[i]);
    // Any tensor named as a store is viewed with the usual parameters.
    const std::string suffix = ".planes";
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      const std::string prefix = name.substr(0, name.size() - suffix.size());
      for (const int code_bits : {8, 4}) (void)grinqh.BitPlanes(prefix, 256, code_bits);
    }
  }
  for (const std::string& section : grinqh.SectionNames()) {
    (void)grinqh.Section(section);
    (void)grinqh.SectionString(section);
  }
  volatile unsigned sink = sum;
  (void)sink;

  (void)ReadGrinqhSummary(file.path());
  (void)LoadGrinqhFiles(file.path());
  return 0;
}
