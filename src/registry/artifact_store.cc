#include "registry/artifact_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/status_macros.h"
#include "common/strings.h"

namespace abgate::registry {
namespace fs = std::filesystem;
namespace {

absl::Status InvalidPath() { return absl::InvalidArgumentError("Invalid path"); }

bool Within(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    if (q == p.end() || *r != *q) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ArtifactStore> ArtifactStore::Open(const fs::path& root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return absl::UnavailableError(StrCat("cannot create artifact root ", root.string(), ": ", ec.message()));
  fs::path canonical = fs::canonical(root, ec);
  if (ec) return absl::UnavailableError(StrCat("cannot resolve artifact root ", root.string(), ": ", ec.message()));
  return ArtifactStore(std::move(canonical));
}

absl::StatusOr<fs::path> ArtifactStore::Resolve(std::string_view relative) const {
  while (!relative.empty() && relative.back() == '/') relative.remove_suffix(1);
  if (relative.empty()) return root_;
  if (relative.front() == '/' || relative.find('\0') != std::string_view::npos ||
      relative.find('\\') != std::string_view::npos) {
    return InvalidPath();
  }
  fs::path out = root_;
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string_view::npos) end = relative.size();
    const std::string_view segment = relative.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return InvalidPath();
    out /= std::string(segment);
    start = end + 1;
  }
  // Symlinks: the longest existing prefix, resolved, must stay inside the root.
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(out, ec);
  if (ec || !Within(root_, resolved)) return InvalidPath();
  return out;
}

absl::StatusOr<std::vector<FileInfo>> ArtifactStore::List(std::string_view relative_dir) const {
  auto dir = Resolve(relative_dir);
  if (!dir.ok()) return dir.status();
  std::vector<FileInfo> out;
  std::error_code ec;
  if (!fs::is_directory(*dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(*dir, ec)) {
    FileInfo info;
    info.path = entry.path().filename().string();
    info.is_dir = entry.is_directory(ec);
    if (!info.is_dir) info.file_size = static_cast<int64_t>(entry.file_size(ec));
    if (info.path.rfind(".abgate-tmp-", 0) == 0) continue;
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const FileInfo& a, const FileInfo& b) { return a.path < b.path; });
  return out;
}

absl::StatusOr<std::vector<FileInfo>> ArtifactStore::ListRecursive(std::string_view relative_dir) const {
  auto dir = Resolve(relative_dir);
  if (!dir.ok()) return dir.status();
  std::vector<FileInfo> out;
  std::error_code ec;
  if (!fs::is_directory(*dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(*dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    FileInfo info;
    info.path = fs::relative(it->path(), *dir, ec).generic_string();
    if (info.path.find(".abgate-tmp-") != std::string::npos) continue;
    info.file_size = static_cast<int64_t>(it->file_size(ec));
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const FileInfo& a, const FileInfo& b) { return a.path < b.path; });
  return out;
}

absl::StatusOr<std::string> ArtifactStore::Read(std::string_view relative) const {
  auto path = Resolve(relative);
  if (!path.ok()) return path.status();
  std::error_code ec;
  if (!fs::is_regular_file(*path, ec)) {
    return absl::NotFoundError(StrCat("No such file or directory: '", relative, "'"));
  }
  std::ifstream in(*path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in && !in.eof()) return absl::InternalError(StrCat("cannot read ", relative));
  return std::move(buf).str();
}

absl::Status ArtifactStore::Write(std::string_view relative, std::string_view bytes) const {
  ABGATE_ASSIGN_OR_RETURN(auto upload, BeginUpload(relative));
  ABGATE_RETURN_IF_ERROR(upload->Write(bytes));
  return upload->Commit();
}

absl::StatusOr<std::unique_ptr<ArtifactUpload>> ArtifactStore::BeginUpload(std::string_view relative) const {
  auto path = Resolve(relative);
  if (!path.ok()) return path.status();
  if (*path == root_) return InvalidPath();
  std::error_code ec;
  fs::create_directories(path->parent_path(), ec);
  if (ec) return absl::InternalError(StrCat("cannot create ", path->parent_path().string(), ": ", ec.message()));
  // The directories now exist: check again that no symlink among them leads outside.
  if (!Within(root_, fs::weakly_canonical(path->parent_path(), ec)) || ec) return InvalidPath();
  static std::atomic<uint64_t> counter{0};
  fs::path tmp = path->parent_path() / StrCat(".abgate-tmp-", getpid(), "-", counter.fetch_add(1));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(StrCat("cannot write ", relative, ": ", std::strerror(errno)));
  return std::unique_ptr<ArtifactUpload>(new ArtifactUpload(fd, std::move(tmp), *std::move(path), std::string(relative)));
}

ArtifactUpload::~ArtifactUpload() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

absl::Status ArtifactUpload::Write(std::string_view bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError(StrCat("the upload of ", relative_, " already failed or ended"));
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      return absl::InternalError(StrCat("cannot write ", relative_, ": ", std::strerror(err)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    written_ += n;
  }
  return absl::OkStatus();
}

absl::Status ArtifactUpload::Commit() {
  if (fd_ < 0) return absl::FailedPreconditionError(StrCat("the upload of ", relative_, " already failed or ended"));
  const int closed = ::close(fd_);  // close reports delayed write errors (NFS, quota)
  fd_ = -1;
  if (closed != 0 || ::rename(tmp_.c_str(), final_.c_str()) != 0) {
    return absl::InternalError(StrCat("cannot write ", relative_, ": ", std::strerror(errno)));
  }
  committed_ = true;
  return absl::OkStatus();
}

absl::Status ArtifactStore::Delete(std::string_view relative) const {
  auto path = Resolve(relative);
  if (!path.ok()) return path.status();
  if (*path == root_) return InvalidPath();
  std::error_code ec;
  fs::remove_all(*path, ec);
  if (ec) return absl::InternalError(StrCat("cannot delete ", relative, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> MlflowArtifactsPath(std::string_view uri) {
  constexpr std::string_view kScheme = "mlflow-artifacts:";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return absl::InvalidArgumentError(StrCat("not an mlflow-artifacts URI: ", uri));
  }
  uri.remove_prefix(kScheme.size());
  if (uri.substr(0, 2) == "//") {  // mlflow-artifacts://host:port/path
    const size_t slash = uri.find('/', 2);
    uri = slash == std::string_view::npos ? std::string_view() : uri.substr(slash);
  }
  while (!uri.empty() && uri.front() == '/') uri.remove_prefix(1);
  return std::string(uri);
}

}  // namespace abgate::registry
