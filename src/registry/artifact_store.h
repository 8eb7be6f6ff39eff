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
#include <memory>
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

// One file being written: bytes go to a temporary file beside the destination, renamed into
// place by Commit. Destroying an upload that was not committed removes the temporary file.
// One owner, one thread at a time.
class ArtifactUpload {
 public:
  ~ArtifactUpload();
  ArtifactUpload(const ArtifactUpload&) = delete;
  ArtifactUpload& operator=(const ArtifactUpload&) = delete;

  // Appends bytes (blocking file I/O). Internal on a write error; the upload is then dead.
  absl::Status Write(std::string_view bytes);
  // Makes the file visible under its name (replacing an older one). Call once.
  absl::Status Commit();
  int64_t bytes_written() const { return written_; }

 private:
  friend class ArtifactStore;
  ArtifactUpload(int fd, std::filesystem::path tmp, std::filesystem::path final_path, std::string relative)
      : fd_(fd), tmp_(std::move(tmp)), final_(std::move(final_path)), relative_(std::move(relative)) {}
  int fd_ = -1;
  std::filesystem::path tmp_;
  std::filesystem::path final_;
  std::string relative_;  // for messages
  int64_t written_ = 0;
  bool committed_ = false;
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
  // Checks the path and opens a temporary file for it (creating its folders): the streaming
  // form of Write, for uploads too large to hold in memory.
  absl::StatusOr<std::unique_ptr<ArtifactUpload>> BeginUpload(std::string_view relative) const;
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
