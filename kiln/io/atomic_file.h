#pragma once
// Kiln's one way to write a file: every writer (checkpoints, safetensors, .npy, ONNX files, JSON
// configs, tokenizers, CSV, images, tracking artefacts) goes through AtomicFile or
// write_file_atomic, so a reader — or the next run after a crash — sees either the old file or the
// whole new one, never a part.
//
//   kiln::AtomicFile f("model.onnx", "export_model");   // creates model.onnx.tmp
//   f.write(header);  f.write(body);                      // buffered, 1 MiB at a time
//   f.commit();            // flush, fsync, rename onto model.onnx, fsync of the directory
//   // leaving scope without commit() (an exception) removes model.onnx.tmp; model.onnx is untouched
//
//   kiln::write_file_atomic("config.json", text, "save");  // the same in one call
#include <filesystem>
#include <string>
#include <string_view>

namespace kiln {

/// A file written to `path` + ".tmp" and renamed onto `path` by commit() after flush and fsync (then
/// the directory is fsynced, best effort, so the rename survives a crash). Destroying an
/// uncommitted AtomicFile removes the temporary. Errors are kiln::IOError prefixed by `op` and
/// naming the file and the system's reason.
class AtomicFile {
 public:
  /// `op` prefixes error messages ("save_csv").
  AtomicFile(std::filesystem::path path, std::string op);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(std::string_view bytes);
  void commit();

 private:
  void flush_buffer();

  std::filesystem::path path_, tmp_;
  std::string op_;
  std::string buffer_;
  int fd_ = -1;
};

/// Writes `bytes` to `path` with an AtomicFile; `op` prefixes error messages.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                       std::string_view op = "save");

}  // namespace kiln
