// Propagation helpers for absl::Status / absl::StatusOr. Thread-compatible (pure macros).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ABGATE_STATUS_CONCAT_INNER_(a, b) a##b
#define ABGATE_STATUS_CONCAT_(a, b) ABGATE_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` (an absl::Status) is not OK.
#define ABGATE_RETURN_IF_ERROR(expr)                   \
  do {                                                 \
    ::absl::Status abgate_status_ = (expr);            \
    if (!abgate_status_.ok()) return abgate_status_;   \
  } while (0)

// `lhs = value of expr` (an absl::StatusOr<T>), or returns its error status.
#define ABGATE_ASSIGN_OR_RETURN(lhs, expr) \
  ABGATE_ASSIGN_OR_RETURN_IMPL_(ABGATE_STATUS_CONCAT_(abgate_statusor_, __LINE__), lhs, expr)

#define ABGATE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
