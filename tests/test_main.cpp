// main() of every test suite (tests/CMakeLists.txt links it in place of gtest_main). Around
// GoogleTest it keeps the rules that make a run mean the same on any machine:
// - Each run gets its own temporary directory: TMPDIR and TEST_TMPDIR (what
//   std::filesystem::temp_directory_path() and ::testing::TempDir() read) point into a fresh
//   mkdtemp directory, removed at exit, so two runs on one machine never share a file name.
// - The thread count asked for with KILN_NUM_THREADS is the one in force: checked before the first
//   test (kiln::get_num_threads() and oneTBB's max_allowed_parallelism both), and after every test,
//   so a test that changes it without restoring it (use ScopedNumThreads in test_support.h) fails
//   the run instead of silently running the tests after it at another count.
// - Skipped tests are named at the end; with KILN_FAIL_ON_SKIP=1 (scripts/test.sh sets it: the
//   scripts install every data set, so a skip there means something is missing) they fail the run.
// - The suite's wall time is printed.
#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/tensor/parallel.h"

namespace {

// Records tests that were skipped or left the thread count changed.
class SuiteRules : public ::testing::EmptyTestEventListener {
 public:
  explicit SuiteRules(int threads) : threads_(threads) {}
  void OnTestEnd(const ::testing::TestInfo& info) override {
    const std::string name = std::string(info.test_suite_name()) + "." + info.name();
    if (info.result()->Skipped()) skipped.push_back(name);
    const int now = kiln::get_num_threads();
    if (now != threads_) {
      leaked.push_back(name + " (left " + std::to_string(now) + ")");
      kiln::set_num_threads(threads_);  // the tests after it still run at the intended count
    }
  }
  std::vector<std::string> skipped, leaked;

 private:
  int threads_;
};

// The process's own temporary directory, removed when the process exits.
struct UniqueTempDir {
  std::filesystem::path path;
  UniqueTempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kiln_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("test_main: mkdtemp");
      std::exit(2);
    }
    path = tmpl;
    ::setenv("TMPDIR", tmpl.c_str(), 1);
    ::setenv("TEST_TMPDIR", tmpl.c_str(), 1);
  }
  ~UniqueTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const auto t0 = std::chrono::steady_clock::now();
  static UniqueTempDir tmp;  // static: removed on exit() too
  ::testing::InitGoogleTest(&argc, argv);

  const int threads = kiln::get_num_threads();
  if (const char* env = std::getenv("KILN_NUM_THREADS")) {
    const int want = std::atoi(env);
    const auto tbb_threads = static_cast<int>(
        tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
    if (threads != want || tbb_threads != want) {
      std::fprintf(stderr,
                   "test_main: KILN_NUM_THREADS=%s but kiln::get_num_threads() is %d and oneTBB "
                   "allows %d threads (both must equal it)\n",
                   env, threads, tbb_threads);
      return 1;
    }
  }

  auto* rules = new SuiteRules(threads);  // owned by GoogleTest's listener list
  ::testing::UnitTest::GetInstance()->listeners().Append(rules);
  int rc = RUN_ALL_TESTS();

  const char* fail_on_skip = std::getenv("KILN_FAIL_ON_SKIP");
  const bool skips_fail = fail_on_skip && std::string(fail_on_skip) == "1";
  for (const std::string& s : rules->skipped)
    std::printf("[ SKIPPED  ] %s%s\n", s.c_str(),
                skips_fail ? " (KILN_FAIL_ON_SKIP=1: a failure)" : "");
  if (skips_fail && !rules->skipped.empty()) rc = 1;
  for (const std::string& s : rules->leaked) {
    std::printf("[ THREADS  ] %s changed the thread count from %d and did not restore it\n",
                s.c_str(), threads);
    rc = 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ SUITE    ] %s: %d tests at %d thread(s), %zu skipped, %.1f s\n",
              argc > 0 ? std::filesystem::path(argv[0]).filename().c_str() : "tests",
              ::testing::UnitTest::GetInstance()->test_to_run_count(), threads,
              rules->skipped.size(), secs);
  return rc;
}
