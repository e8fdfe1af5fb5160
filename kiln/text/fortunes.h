#pragma once
// Reading the fortune cookie files of Debian's `fortunes` package (/usr/share/games/fortunes/
// <topic>: quotes separated by lines holding only "%") into a labelled, multi-class text table for
// the text trainers. The file name is the label: 43 topics ("computers", "science", "politics",
// ...), 2 to 1,251 entries each, 15,217 in all (Debian 12, fortunes 1:1.99.1-7.3).
//
//   data::Table quotes = load_fortunes("/usr/share/games/fortunes", {.min_per_topic = 200});
//   // columns "Label" (the topic) and "Text" (one quote)
//
// Encoding: the files are UTF-8 (most are plain ASCII). A file that is not valid UTF-8 is read as
// Latin-1 (ISO 8859-1) and converted to UTF-8, so the tokenizers always get UTF-8. A few quotes in
// "law" and "pets" are double-encoded UTF-8 ("Ã¢ÂÂ" for a curly quote) in the package itself;
// they are valid UTF-8 and are kept as they are.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/data/columns.h"

namespace kiln::text {

inline constexpr const char* kDefaultFortunesDir = "/usr/share/games/fortunes";

/// Splits the contents of one fortune file into its entries, in file order. A line holding only
/// "%" (optionally followed by "\r") ends an entry, as strfile(1) reads it. Each entry is cleaned:
/// terminal overstriking is resolved (a backspace deletes the character before it, so "_\bx" and
/// "x\bx" become "x"), other control characters except tab and newline are dropped, CRLF becomes
/// LF, and surrounding whitespace is trimmed. Entries that are empty after this are skipped (a file
/// may start with "%" or hold "%\n%"). Text that is not valid UTF-8 is first read as Latin-1.
/// max_bytes > 0 cuts each entry to at most that many bytes without splitting a UTF-8 character.
std::vector<std::string> split_fortunes(std::string_view file_text, size_t max_bytes = 0);

struct FortunesOptions {
  /// Topics (file names) to read; empty = every topic file in the directory (regular files without
  /// the .dat / .u8 extensions; sub-directories such as off/ are not read).
  std::vector<std::string> topics = {};
  /// Topics with fewer entries than this are dropped, or merged under small_topics_label when that
  /// is set. Counted before max_per_topic cuts.
  size_t min_per_topic = 0;
  size_t max_per_topic = 0;  // 0 = every entry; else the first N in file order
  size_t max_bytes = 0;      // per entry, passed to split_fortunes
  /// Non-empty: topics below min_per_topic are kept under this one label instead of dropped.
  std::string small_topics_label = {};
};

/// Reads the topic files of `dir` (sorted by name; entries in file order) into a table with columns
/// "Label" (string: the topic, or small_topics_label) and "Text" (string: one entry from
/// split_fortunes). Throws kiln::IOError naming a missing directory or a missing listed topic.
data::Table load_fortunes(const std::filesystem::path& dir = kDefaultFortunesDir,
                          const FortunesOptions& options = {});

}  // namespace kiln::text
