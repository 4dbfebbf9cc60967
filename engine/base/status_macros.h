// Early-return helpers for absl::Status / absl::StatusOr, as in Abseil-based codebases.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

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
