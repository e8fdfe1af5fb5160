// `kiln run MODEL.onnx --input NAME=FILE.npy ... [--output-dir DIR]` runs any ONNX model on .npy
// inputs and writes one .npy per output; `kiln score --model MODEL.onnx --data IN.csv --input-cols
// a,b,c --out SCORED.csv` scores a table with a model that takes one 2-D float input (a tabular
// model), appending the output columns (ML.NET's ApplyOnnxModel). Both import the model with
// kiln/onnx/import.h; this file is argument handling and file I/O only.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "kiln/autograd/grad_mode.h"
#include "kiln/data/csv.h"
#include "kiln/io/npy.h"
#include "kiln/onnx/import.h"

namespace kiln::tools {
namespace {

constexpr const char* kRunUsage =
    "usage: kiln run MODEL.onnx [--input NAME=FILE.npy]... [--output-dir DIR]\n"
    "\n"
    "Runs an ONNX model in Kiln. Each graph input is given as a .npy file, by name (NAME=FILE) or\n"
    "in graph order (a bare FILE). Writes <output name>.npy per output into DIR (default: the\n"
    "current directory) and prints each output's shape and dtype.\n"
    "\n"
    "Exit status: 0 ok, 1 unreadable model or inputs, unsupported operators, or a failed run;\n"
    "2 bad usage.\n";

constexpr const char* kScoreUsage =
    "usage: kiln score --model MODEL.onnx --data IN.csv --input-cols A,B,C --out SCORED.csv\n"
    "                  [--separator C] [--batch-size N]\n"
    "\n"
    "Scores every row of a CSV/TSV table with a model that takes one 2-D float input (rows x\n"
    "features): the named columns, in that order, are the features. Writes the table with the\n"
    "model's outputs appended: one column per output value, named <output> (one value per row) or\n"
    "<output>.<i>.\n"
    "\n"
    "Exit status: 0 ok, 1 unreadable files or a failed run, 2 bad usage.\n";

// A file name for an output: the ONNX name with characters a path cannot hold replaced by '_'.
std::string file_stem(const std::string& name) {
  std::string s = name.empty() ? "output" : name;
  for (char& c : s)
    if (c == '/' || c == '\\' || c == ':' || static_cast<unsigned char>(c) < 32) c = '_';
  if (s == "." || s == "..") s = "_";
  return s;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

int run_main(std::span<const std::string> args) {
  std::optional<std::string> model_path;
  std::vector<std::pair<std::string, std::string>> named;  // name ("" = positional), file
  std::string out_dir = ".";
  for (size_t k = 0; k < args.size(); ++k) {
    const std::string& a = args[k];
    auto value = [&](const char* flag) -> std::optional<std::string> {
      if (k + 1 >= args.size()) {
        fmt::print(stderr, "kiln run: {} needs a value\n{}", flag, kRunUsage);
        return std::nullopt;
      }
      return args[++k];
    };
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kRunUsage);
      return 0;
    } else if (a == "--input") {
      auto v = value("--input");
      if (!v) return 2;
      const size_t eq = v->find('=');
      if (eq == std::string::npos)
        named.emplace_back("", *v);
      else
        named.emplace_back(v->substr(0, eq), v->substr(eq + 1));
    } else if (a == "--output-dir") {
      auto v = value("--output-dir");
      if (!v) return 2;
      out_dir = *v;
    } else if (a.size() > 1 && a[0] == '-') {
      fmt::print(stderr, "kiln run: unknown option '{}'\n{}", a, kRunUsage);
      return 2;
    } else if (model_path) {
      fmt::print(stderr, "kiln run: one model at a time ('{}' and '{}' given)\n", *model_path, a);
      return 2;
    } else {
      model_path = a;
    }
  }
  if (!model_path) {
    fmt::print(stderr, "kiln run: no model file given\n{}", kRunUsage);
    return 2;
  }
  auto model = onnx::import_model(*model_path);
  const std::vector<std::string> names = model->input_names();
  std::map<std::string, Tensor> inputs;
  size_t positional = 0;
  for (const auto& [name, file] : named) {
    std::string key = name;
    if (key.empty()) {
      KILN_CHECK(positional < names.size(), "more inputs given than the model takes ([{}])",
                 fmt::join(names, ", "));
      key = names[positional++];
    }
    KILN_CHECK(!inputs.count(key), "input '{}' is given twice", key);
    inputs[key] = load_npy(file);
  }
  std::map<std::string, Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = model->run(inputs);
  }
  std::filesystem::create_directories(out_dir);
  for (const std::string& name : model->output_names()) {
    const Tensor& t = outputs.at(name);
    const std::string path = (std::filesystem::path(out_dir) / (file_stem(name) + ".npy")).string();
    save_npy(t, path);
    fmt::print("{} {} [{}] -> {}\n", name, t.dtype(), fmt::join(t.shape(), ", "), path);
  }
  return 0;
}

int score_main(std::span<const std::string> args) {
  std::optional<std::string> model_path, data_path, cols, out_path;
  char separator = ',';
  int64_t batch = 1024;
  for (size_t k = 0; k < args.size(); ++k) {
    const std::string& a = args[k];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kScoreUsage);
      return 0;
    }
    if (k + 1 >= args.size() || a.rfind("--", 0) != 0) {
      fmt::print(stderr, "kiln score: unexpected '{}'\n{}", a, kScoreUsage);
      return 2;
    }
    const std::string& v = args[++k];
    if (a == "--model")
      model_path = v;
    else if (a == "--data")
      data_path = v;
    else if (a == "--input-cols")
      cols = v;
    else if (a == "--out")
      out_path = v;
    else if (a == "--separator" && v.size() == 1)
      separator = v[0];
    else if (a == "--separator" && v == "\\t")
      separator = '\t';
    else if (a == "--batch-size")
      batch = std::max<int64_t>(1, std::atoll(v.c_str()));
    else {
      fmt::print(stderr, "kiln score: unknown option '{}'\n{}", a, kScoreUsage);
      return 2;
    }
  }
  if (!model_path || !data_path || !cols || !out_path) {
    fmt::print(stderr, "kiln score: --model, --data, --input-cols and --out are required\n{}",
               kScoreUsage);
    return 2;
  }
  auto model = onnx::import_model(*model_path);
  KILN_CHECK(model->inputs().size() == 1 && model->inputs()[0].dtype == kFloat32 &&
                 (!model->inputs()[0].has_shape || model->inputs()[0].dims.size() == 2),
             "{}: score needs a model with one 2-D float32 input (rows x features); this one "
             "takes [{}]",
             *model_path, model->extra_repr());
  const std::vector<std::string> features = split_list(*cols);
  data::CsvOptions opts;
  opts.separator = separator;
  data::Table table = data::infer_types(data::load_csv(*data_path, opts));
  const int64_t rows = static_cast<int64_t>(table.num_rows()),
                F = static_cast<int64_t>(features.size());
  Array x(Shape{rows, F}, kFloat32);
  for (int64_t j = 0; j < F; ++j) {
    const data::Column& c = table.column(features[static_cast<size_t>(j)]);
    for (int64_t i = 0; i < rows; ++i) {
      float v;
      if (c.type() == data::ColumnType::Float)
        v = c.floats()[static_cast<size_t>(i)];
      else if (c.type() == data::ColumnType::Int)
        v = static_cast<float>(c.ints()[static_cast<size_t>(i)]);
      else
        KILN_CHECK(false, "{}: column '{}' is {}, not numeric", *data_path, c.name(),
                   data::to_string(c.type()));
      x.data<float>()[i * F + j] = v;
    }
  }
  // Score in batches; each output becomes (rows, values-per-row) floats.
  std::vector<std::vector<float>> columns;
  std::vector<std::string> column_names;
  NoGradGuard no_grad;
  for (int64_t start = 0; start < rows; start += batch) {
    const int64_t len = std::min(batch, rows - start);
    const std::vector<Tensor> outs =
        model->run(std::vector<Tensor>{Tensor(x.narrow(0, start, len).contiguous())});
    for (size_t o = 0; o < outs.size(); ++o) {
      const Tensor& t = outs[o];
      KILN_CHECK(t.dim() >= 1 && t.size(0) == len,
                 "output '{}' has shape [{}]; score needs one row per input row",
                 model->output_names()[o], fmt::join(t.shape(), ", "));
      const int64_t per = len == 0 ? 0 : t.numel() / len;
      const std::vector<float> v = t.to_vector<float>();
      if (start == 0) {
        for (int64_t j = 0; j < per; ++j) {
          column_names.push_back(per == 1 ? model->output_names()[o]
                                          : fmt::format("{}.{}", model->output_names()[o], j));
          columns.emplace_back();
        }
      }
      size_t base = 0;
      for (size_t p = 0; p < o; ++p)
        base += static_cast<size_t>(outs[p].numel() / std::max<int64_t>(len, 1));
      for (int64_t i = 0; i < len; ++i)
        for (int64_t j = 0; j < per; ++j)
          columns[base + static_cast<size_t>(j)].push_back(v[static_cast<size_t>(i * per + j)]);
    }
  }
  for (size_t c = 0; c < columns.size(); ++c)
    table.add_column(data::Column(column_names[c], std::move(columns[c])));
  data::CsvWriteOptions w;
  w.separator = separator;
  data::save_csv(table, *out_path, w);
  fmt::print("scored {} rows with {} -> {} ({} output columns)\n", rows, *model_path, *out_path,
             column_names.size());
  return 0;
}

}  // namespace kiln::tools
