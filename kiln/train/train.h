#pragma once
// Everything in kiln_train, the Keras-like API: Model / Sequential (compile, fit, evaluate,
// predict, summary, save, load_model), kiln::layers, kiln::losses, kiln::metrics, kiln::callbacks,
// kiln::optimizers, and the safetensors reader / writer.
//
//   #include "kiln/train/train.h"
//   kiln::Sequential model({kiln::layers::Dense(128, "relu"), kiln::layers::Dense(10)});
//   model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
//   model.fit(x, y, {.epochs = 5});
#include "kiln/io/json.h"
#include "kiln/io/safetensors.h"
#include "kiln/train/callbacks.h"
#include "kiln/train/layers.h"
#include "kiln/train/losses.h"
#include "kiln/train/metrics.h"
#include "kiln/train/model.h"
#include "kiln/train/optimizers.h"
#include "kiln/train/progress.h"
