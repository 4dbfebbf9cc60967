// Early-return helpers for absl::Status / absl::StatusOr, as in Abseil-based codebases,
// and WithContext, which says where an error happened.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace grinqh {

// The error with `context` (a file, a shard, a section) before its message,
// "context: message", and the same code. An OK status stays OK.
inline absl::Status WithContext(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(absl::string_view(context.data(), context.size()), ": ", status.message()));
}

}  // namespace grinqh

#define GRINQH_CONCAT_INNER(a, b) a##b
#define GRINQH_CONCAT(a, b) GRINQH_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when it is not OK.
#define GRINQH_RETURN_IF_ERROR(...)                           \
  do {                                                        \
    if (absl::Status s_ = (__VA_ARGS__); !s_.ok()) return s_; \
  } while (0)

// `GRINQH_ASSIGN_OR_RETURN(auto x, F());` — assigns the value or returns the error.
// Variadic so that an expression with braced lists (unprotected commas) works.
#define GRINQH_ASSIGN_OR_RETURN(lhs, ...) \
  GRINQH_ASSIGN_OR_RETURN_IMPL(GRINQH_CONCAT(statusor_, __LINE__), lhs, (__VA_ARGS__))
#define GRINQH_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = expr;                                   \
  if (!tmp.ok()) return tmp.status();                \
  lhs = *std::move(tmp)
