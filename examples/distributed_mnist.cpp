// Data-parallel training with fit: the same program runs alone or as N processes under mpirun,
// and N processes reach the same weights as one (up to float rounding).
//
//   ./build/examples/distributed_mnist [epochs=5]                       # one process
//   mpirun -np 2 ./build/examples/distributed_mnist [epochs=5]          # two ranks, one machine
//   mpirun -np 4 --hostfile hosts ./build/examples/distributed_mnist    # across machines
//
// Only rank 0 prints and writes mnist_distributed.kiln. docs/DISTRIBUTED.md explains the rest.
#include <cstdio>
#include <string>

#include "kiln/distributed/distributed.h"
#include "kiln/kiln.h"
#include "kiln/vision/mnist_json.h"

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 5;
  auto digits = kiln::vision::split_digits(
      kiln::vision::load_mnist_digits_json(kiln::vision::default_digits_dir(KILN_SOURCE_DIR)));
  kiln::Tensor x = digits.train.images, y = digits.train.labels;  // (8000, 784), (8000)

  kiln::manual_seed(0);
  kiln::Sequential model({kiln::layers::Dense(128, "relu"), kiln::layers::Dense(10)});
  // Under mpirun, compile() starts MPI and fit() trains data-parallel: batch_size is the global
  // batch, each rank computes the gradient of its share, and the shares' gradients are averaged
  // while backward runs. Only rank 0 prints the progress bar and writes files.
  model.compile(kiln::optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
  kiln::History history = model.fit(x, y, {.epochs = epochs, .batch_size = 64, .seed = 1});
  kiln::Logs test =
      model.evaluate(digits.test.images, digits.test.labels);  // rows split over ranks
  model.save("mnist_distributed.kiln");                        // rank 0 writes

  if (model.is_main_process()) {
    std::printf("%d process(es): test accuracy %.4f\n", kiln::distributed::world_size(),
                test.at("accuracy"));
    if (const auto* s = model.distributed_stats())
      std::printf(
          "per step: %.3f ms waiting for gradient all-reduces, %lld of %lld buckets "
          "started during backward\n",
          1e3 * s->wait_seconds / static_cast<double>(s->steps),
          static_cast<long long>(s->buckets_started_in_backward),
          static_cast<long long>(s->buckets_started_in_backward + s->buckets_started_at_finish));
  }
  (void)history;
  return 0;
}
