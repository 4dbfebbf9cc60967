// The .grinqh model file: one self-contained, memory-mappable file holding a GRINQH-packed
// model — bit-plane weights, the tensors kept in their Hugging Face dtype, the model and
// tokenizer configuration, quantization settings, schedules and calibration results.
//
// Layout (docs/FORMAT.md is the specification):
//   bytes 0..7    magic "\x89GRINQH\n" (the high byte and the newline expose 7-bit and
//                 text-mode corruption, as in PNG)
//   bytes 8..11   u32 format version (2), little-endian
//   bytes 12..15  u32 flags (0; a reader refuses bits it does not know)
//   bytes 16..23  u64 metadata length
//   bytes 24..    metadata JSON (UTF-8), zero padding to a multiple of 4096, then the tensor
//                 data: each tensor at an absolute offset that is a multiple of 256.
// Written by `grinqh quantize`; read by the engine. The writer writes `path.tmp` and renames
// it, so a crash never leaves a half-written file under the real name; the reader checks
// every field (and, by default, every tensor's CRC-32) before handing anything out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/dtype.h"
#include "engine/quant/bit_planes.h"
#include "engine/model/safetensors.h"

namespace grinqh {

// 2: zeros are bytes and grading statistics fp16 (version 1 stored both wider).
inline constexpr uint32_t kGrinqhFormatVersion = 2;
inline constexpr size_t kGrinqhHeaderBytes = 24;
inline constexpr size_t kGrinqhDataAlignment = 4096;   // where the data section starts
inline constexpr size_t kGrinqhTensorAlignment = 256;  // where each tensor starts

// A tensor inside an open file. Does not own its bytes: valid while the file is open.
struct GrinqhTensor {
  std::string name;
  // Any DType: U8 holds bit planes and zeros, F16 scales and grading statistics (fp16
  // bits), U16 integer tables; plain tensors keep their checkpoint's float type.
  DType dtype = DType::kU8;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;  // 256-byte aligned within a page-aligned mapping
  size_t nbytes = 0;
  uint32_t crc32 = 0;

  int64_t numel() const;
  // The bytes as elements of T (T's size must divide nbytes; alignment is guaranteed).
  template <typename T>
  std::span<const T> as() const {
    return {reinterpret_cast<const T*>(data), nbytes / sizeof(T)};
  }
};

class GrinqhFile {
 public:
  // Maps and validates the file. With verify_checksums, every tensor's CRC-32 is checked
  // (reads the whole file once); without, only the structure is.
  static absl::StatusOr<std::unique_ptr<GrinqhFile>> Open(const std::filesystem::path& path,
                                                          bool verify_checksums = true);

  uint32_t version() const { return version_; }
  const std::filesystem::path& path() const { return file_->path(); }
  const std::map<std::string, GrinqhTensor, std::less<>>& tensors() const { return tensors_; }
  // The tensor if present; Get says NOT_FOUND naming the tensor and the file.
  const GrinqhTensor* Find(std::string_view name) const;
  absl::StatusOr<const GrinqhTensor*> Get(std::string_view name) const;

  // The whole metadata JSON text, as stored.
  std::string_view metadata_json() const { return metadata_json_; }
  // A top-level metadata section ("config", "quantization", ...) as compact JSON text.
  std::optional<std::string> Section(std::string_view name) const;
  // A section stored as a JSON string (such as "tokenizer", the tokenizer.json text),
  // decoded; NOT_FOUND when absent, INVALID_ARGUMENT when it is not a string.
  absl::StatusOr<std::string> SectionString(std::string_view name) const;
  std::vector<std::string> SectionNames() const;

  // The bit-plane store `{prefix}.planes` (U8 [tiles, cols, stored_planes, tile_rows/8])
  // with `{prefix}.scales` (F16 [rows, groups]) and `{prefix}.zeros` (U8 [rows, groups],
  // each a code_bits-bit code), viewed in place. group_size and code_bits (8 for GRINQH, N
  // for an N-bit baseline) come from the "quantization" section: the shapes cannot say them.
  absl::StatusOr<BitPlaneView> BitPlanes(std::string_view prefix, int group_size, int code_bits) const;

 private:
  explicit GrinqhFile(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {}
  absl::Status Parse(bool verify_checksums);

  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::string_view metadata_json_;
  std::map<std::string, GrinqhTensor, std::less<>> tensors_;
  std::map<std::string, std::string, std::less<>> sections_;         // compact JSON text
  std::map<std::string, std::string, std::less<>> string_sections_;  // decoded JSON strings
};

class GrinqhFileWriter {
 public:
  // kCopy keeps a copy of the bytes; kReference keeps only the span, which the caller must
  // keep alive until Write returns (for multi-gigabyte weights that should not be doubled).
  enum class Storage { kCopy, kReference };

  // Refuses an empty or repeated name and bytes that do not match shape × dtype size.
  absl::Status AddTensor(std::string_view name, DType dtype, std::vector<int64_t> shape,
                         std::span<const std::byte> bytes, Storage storage = Storage::kCopy);
  // `{prefix}.planes`, `{prefix}.scales` and `{prefix}.zeros` of a store (see BitPlanes).
  absl::Status AddBitPlanes(std::string_view prefix, const BitPlaneMatrix& matrix,
                            Storage storage = Storage::kCopy);
  // A top-level metadata section from JSON text (refused when it does not parse, or when
  // the name is one the format owns: "format_version", "tensors").
  absl::Status SetSection(std::string_view name, std::string_view json_text);
  // A section holding `text` as a JSON string (the tokenizer.json file, verbatim).
  absl::Status SetSectionString(std::string_view name, std::string_view text);

  // Writes path + ".tmp", flushes it to disk, renames it to path.
  absl::Status Write(const std::filesystem::path& path) const;

 private:
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> owned;
    std::span<const std::byte> bytes;
  };
  absl::Status CheckSectionName(std::string_view name) const;
  std::string Layout(std::vector<uint64_t>& offsets) const;

  std::vector<std::unique_ptr<Pending>> tensors_;             // in file order
  std::map<std::string, std::string, std::less<>> sections_;  // name -> compact JSON text
};

}  // namespace grinqh
