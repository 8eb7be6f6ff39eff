// ArtifactStore: the files behind MLflow's artifact proxy (`mlflow-artifacts:/<path>`), kept
// under one root folder.
//
// Every path from a request is checked before it touches the disk: relative only, no `..`
// or empty segments, no NUL or backslash, and the resolved location (symlinks followed) must
// stay inside the root. Writes go to a temporary file renamed into place, so a reader never
// sees half a file. Thread-safe (the file system is the only state).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace abgate::registry {

struct FileInfo {
  std::string path;  // relative to the listed directory's base (see List)
  bool is_dir = false;
  int64_t file_size = 0;  // files only
};

class ArtifactStore {
 public:
  // Creates `root` when missing.
  static absl::StatusOr<ArtifactStore> Open(const std::filesystem::path& root);

  // InvalidArgument("Invalid path") for anything that could leave the root.
  absl::StatusOr<std::filesystem::path> Resolve(std::string_view relative) const;
  // The entries of a directory (names only); empty when the directory does not exist.
  absl::StatusOr<std::vector<FileInfo>> List(std::string_view relative_dir) const;
  // Recursively lists files under `relative_dir`, paths relative to it ("model/MLmodel").
  absl::StatusOr<std::vector<FileInfo>> ListRecursive(std::string_view relative_dir) const;
  absl::StatusOr<std::string> Read(std::string_view relative) const;
  absl::Status Write(std::string_view relative, std::string_view bytes) const;
  absl::Status Delete(std::string_view relative) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  explicit ArtifactStore(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;  // canonical
};

// Splits "mlflow-artifacts:/a/b" or "mlflow-artifacts://host:port/a/b" into "a/b"; empty
// optional-like error for other schemes.
absl::StatusOr<std::string> MlflowArtifactsPath(std::string_view uri);

}  // namespace abgate::registry
