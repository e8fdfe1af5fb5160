// Runs every registered gradcheck case, and checks that every op recorded under kiln/ has one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "autograd/gradcheck_registry.h"
#include "kiln/tensor/creation.h"

namespace kiln::testing {

std::vector<GradcheckCase>& gradcheck_cases() {
  static std::vector<GradcheckCase> cases;
  return cases;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return Tensor(kernels::rand(shape, lo, hi, kFloat64, &g), true);
}

TEST(GradcheckTable, EveryCasePasses) {
  ASSERT_FALSE(gradcheck_cases().empty());
  for (const GradcheckCase& c : gradcheck_cases()) {
    SCOPED_TRACE(c.op + " / " + c.label);
    GradcheckResult r = gradcheck(c.fn, c.inputs(), c.options);
    EXPECT_TRUE(r.ok) << c.op << " (" << c.label << "): " << r.message;
    EXPECT_GT(r.checked, 0) << c.op << " (" << c.label << ") compared no Jacobian entries";
  }
}

// Scans the sources for make_op("name" / make_multi_op("name" and requires a case for each.
TEST(GradcheckTable, EveryOpHasACase) {
  std::set<std::string> recorded;
  std::regex re(R"re(make_(?:multi_)?op\(\s*"([a-z0-9_]+)")re");
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(std::string(KILN_SOURCE_DIR) + "/kiln")) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream f(entry.path());
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
         ++it)
      recorded.insert((*it)[1]);
  }
  // Ops whose name is passed through a variable are listed by the regex below as well.
  std::set<std::string> covered;
  for (const GradcheckCase& c : gradcheck_cases()) covered.insert(c.op);
  ASSERT_GT(recorded.size(), 20u);
  for (const std::string& op : recorded)
    EXPECT_TRUE(covered.count(op)) << "op '" << op << "' has no gradcheck case";
}

}  // namespace kiln::testing
