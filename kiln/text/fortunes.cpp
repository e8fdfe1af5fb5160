#include "kiln/text/fortunes.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <utility>

#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"

namespace kiln::text {

namespace fs = std::filesystem;

namespace {

bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (const char c : s) append_utf8(out, static_cast<unsigned char>(c));
  return out;
}

/// One entry's raw lines -> its cleaned text (see split_fortunes).
std::string clean_entry(std::string_view raw, size_t max_bytes) {
  std::string s;
  s.reserve(raw.size());
  for (const char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\b') {
      // Overstriking: drop the whole UTF-8 character before the backspace, if any on this line.
      while (!s.empty() && is_continuation_byte(s.back())) s.pop_back();
      if (!s.empty() && s.back() != '\n') s.pop_back();
    } else if (c == '\n' || c == '\t' || (u >= 0x20 && u != 0x7F)) {
      s += c;
    }
  }
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
  size_t begin = 0, end = s.size();
  while (begin < end && space(s[begin])) ++begin;
  while (end > begin && space(s[end - 1])) --end;
  if (max_bytes > 0 && end - begin > max_bytes) {
    end = begin + max_bytes;
    while (end > begin && is_continuation_byte(s[end])) --end;
  }
  return s.substr(begin, end - begin);
}

}  // namespace

std::vector<std::string> split_fortunes(std::string_view file_text, size_t max_bytes) {
  std::string converted;
  if (!is_valid_utf8(file_text)) {
    converted = latin1_to_utf8(file_text);
    file_text = converted;
  }
  std::vector<std::string> entries;
  size_t entry_begin = 0, pos = 0;
  auto finish = [&](size_t entry_end) {
    std::string e = clean_entry(file_text.substr(entry_begin, entry_end - entry_begin), max_bytes);
    if (!e.empty()) entries.push_back(std::move(e));
  };
  while (pos < file_text.size()) {
    size_t eol = file_text.find('\n', pos);
    if (eol == std::string_view::npos) eol = file_text.size();
    const std::string_view line = file_text.substr(pos, eol - pos);
    if (line == "%" || line == "%\r") {
      finish(pos);
      entry_begin = std::min(eol + 1, file_text.size());
    }
    pos = eol + 1;
  }
  if (entry_begin < file_text.size()) finish(file_text.size());
  return entries;
}

data::Table load_fortunes(const fs::path& dir, const FortunesOptions& options) {
  KILN_CHECK_AS(IOError, fs::is_directory(dir),
                "load_fortunes: {} is not a directory (install the Debian package fortunes)",
                dir.string());
  std::vector<std::string> topics = options.topics;
  if (topics.empty()) {
    for (const auto& e : fs::directory_iterator(dir)) {
      const fs::path ext = e.path().extension();
      if (e.is_regular_file() && ext != ".dat" && ext != ".u8") {
        topics.push_back(e.path().filename().string());
      }
    }
  }
  std::sort(topics.begin(), topics.end());
  std::vector<std::string> labels, texts;
  for (const std::string& topic : topics) {
    const fs::path file = dir / topic;
    KILN_CHECK_AS(IOError, fs::is_regular_file(file),
                  "load_fortunes: topic '{}' has no file {} (topics are the file names in {})",
                  topic, file.string(), dir.string());
    std::ifstream in(file, std::ios::binary);
    KILN_CHECK_AS(IOError, in.good(), "load_fortunes: cannot open {}", file.string());
    const std::string raw{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<std::string> entries = split_fortunes(raw, options.max_bytes);
    std::string label = topic;
    if (entries.size() < options.min_per_topic) {
      if (options.small_topics_label.empty()) continue;
      label = options.small_topics_label;
    }
    if (options.max_per_topic > 0 && entries.size() > options.max_per_topic) {
      entries.resize(options.max_per_topic);
    }
    for (std::string& e : entries) {
      texts.push_back(std::move(e));
      labels.push_back(label);
    }
  }
  data::Table t;
  t.add_column(data::Column("Label", std::move(labels)));
  t.add_column(data::Column("Text", std::move(texts)));
  return t;
}

}  // namespace kiln::text
