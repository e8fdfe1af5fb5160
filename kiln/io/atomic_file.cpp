#include "kiln/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "kiln/tensor/error.h"

namespace kiln {

AtomicFile::AtomicFile(std::filesystem::path path, std::string op)
    : path_(std::move(path)), op_(std::move(op)) {
  tmp_ = path_;
  tmp_ += ".tmp";
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  KILN_CHECK_AS(IOError, fd_ >= 0, "{}: cannot create {}: {}", op_, tmp_.string(),
                std::strerror(errno));
  buffer_.reserve(size_t{1} << 20);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    std::error_code ignored;
    std::filesystem::remove(tmp_, ignored);
  }
}

void AtomicFile::write(std::string_view bytes) {
  buffer_.append(bytes);
  if (buffer_.size() >= (size_t{1} << 20)) flush_buffer();
}

void AtomicFile::flush_buffer() {
  const char* p = buffer_.data();
  size_t left = buffer_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    KILN_CHECK_AS(IOError, n > 0, "{}: cannot write {}: {}", op_, tmp_.string(),
                  std::strerror(errno));
    p += n;
    left -= static_cast<size_t>(n);
  }
  buffer_.clear();
}

void AtomicFile::commit() {
  KILN_CHECK_AS(IOError, fd_ >= 0, "{}: {} was already committed", op_, path_.string());
  flush_buffer();
  KILN_CHECK_AS(IOError, ::fsync(fd_) == 0, "{}: cannot fsync {}: {}", op_, tmp_.string(),
                std::strerror(errno));
  const int closed = ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  if (closed != 0) {
    std::filesystem::remove(tmp_, ec);
    throw IOError(fmt::format("{}: cannot close {}: {}", op_, tmp_.string(), std::strerror(errno)));
  }
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp_, ignored);
    throw IOError(fmt::format("{}: cannot rename {} to {}: {}", op_, tmp_.string(), path_.string(),
                              ec.message()));
  }
  // Persist the rename itself: fsync the directory entry (best effort; some filesystems refuse).
  const std::filesystem::path dir = path_.has_parent_path() ? path_.parent_path() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                       std::string_view op) {
  AtomicFile f(path, std::string(op));
  f.write(bytes);
  f.commit();
}

}  // namespace kiln
