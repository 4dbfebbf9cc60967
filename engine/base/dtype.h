// The element types of stored tensors, named as safetensors and the .grinqh format spell them.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace grinqh {

// F32, F16 and BF16 hold weights (all a checkpoint may hold); U8 holds bit planes and
// zeros, U16 integer tables, in a .grinqh file.
enum class DType { kF32, kF16, kBF16, kU8, kU16 };

inline constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kU8, DType::kU16};

constexpr std::string_view DTypeName(DType dtype) {  // "F32", "F16", "BF16", "U8", "U16"
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kU8:
      return "U8";
    case DType::kU16:
      return "U16";
  }
  return "?";
}

constexpr size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kU16:
      return 2;
    case DType::kU8:
      return 1;
  }
  return 0;
}

// A float type: one the weight paths widen to float.
constexpr bool IsFloat(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

// The type DTypeName spells `name`; nullopt for any other name.
constexpr std::optional<DType> ParseDType(std::string_view name) {
  for (const DType dtype : kAllDTypes) {
    if (name == DTypeName(dtype)) return dtype;
  }
  return std::nullopt;
}

}  // namespace grinqh
