#include "kiln/io/file.h"

#include <fstream>
#include <sstream>

#include "kiln/io/atomic_file.h"
#include "kiln/tensor/error.h"

namespace kiln::io {

json::Value read_json_file(const std::filesystem::path& path) {
  return json::parse(read_text_file(path, "json"), path.string());
}

std::string read_text_file(const std::filesystem::path& path, std::string_view op) {
  std::error_code ec;
  KILN_CHECK_AS(IOError, !std::filesystem::is_directory(path, ec),
                "{}: {} is a directory (a file was expected)", op, path.string());
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "{}: cannot open {} for reading", op, path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  KILN_CHECK_AS(IOError, !in.bad(), "{}: error while reading {}", op, path.string());
  return std::move(ss).str();
}

void write_text_file(const std::filesystem::path& path, std::string_view content,
                     std::string_view op) {
  write_file_atomic(path, content, op);
}

}  // namespace kiln::io
