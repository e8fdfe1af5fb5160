// kiln::AtomicFile, the one writer every file Kiln saves goes through: a committed file has all
// its bytes, an uncommitted one leaves the old file as it was and no temporary behind, and a
// failure names the operation and the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/io/atomic_file.h"
#include "kiln/io/npy.h"
#include "kiln/tensor/error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(AtomicFile, CommitWritesEveryByteAndLeavesNoTemporary) {
  const fs::path dir = fresh_dir("atomic_commit");
  const fs::path path = dir / "out.bin";
  // More than the 1 MiB buffer, in uneven pieces, with zero bytes inside.
  std::string expected;
  {
    AtomicFile f(path, "test");
    for (int i = 0; i < 3000; ++i) {
      std::string piece(static_cast<size_t>(i % 997 + 1), static_cast<char>(i % 256));
      f.write(piece);
      expected += piece;
    }
    EXPECT_FALSE(fs::exists(path)) << "nothing is visible before commit()";
    f.commit();
  }
  EXPECT_GT(expected.size(), size_t{1} << 20);
  EXPECT_EQ(read_all(path), expected);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST(AtomicFile, AnUncommittedWriteLeavesTheOldFile) {
  const fs::path dir = fresh_dir("atomic_abort");
  const fs::path path = dir / "model.bin";
  write_file_atomic(path, "old contents", "test");
  try {
    AtomicFile f(path, "test");
    f.write(std::string(3 << 20, 'x'));  // flushed to the temporary
    throw std::runtime_error("the writer failed half-way");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(read_all(path), "old contents");
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST(AtomicFile, ReplacesAnExistingFile) {
  const fs::path dir = fresh_dir("atomic_replace");
  const fs::path path = dir / "config.json";
  write_file_atomic(path, "{\"a\": 1}", "test");
  write_file_atomic(path, "{}", "test");
  EXPECT_EQ(read_all(path), "{}");
}

TEST(AtomicFile, AFailureNamesTheOperationAndTheFile) {
  const fs::path path = fs::path(::testing::TempDir()) / "no_such_dir" / "x.npy";
  try {
    write_file_atomic(path, "bytes", "save_thing");
    FAIL() << "writing into a missing directory must throw";
  } catch (const IOError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("save_thing"), std::string::npos) << what;
    EXPECT_NE(what.find("no_such_dir/x.npy"), std::string::npos) << what;
  }
  // save_npy goes through the same writer: same error, nothing written.
  EXPECT_THROW(save_npy(ones({2, 2}), path.string()), IOError);
  EXPECT_FALSE(fs::exists(path.parent_path()));
}

}  // namespace
}  // namespace kiln
