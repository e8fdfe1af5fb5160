#pragma once
// The umbrella header a training script includes (and links Kiln::kiln): tensors, autograd and
// every op, nn modules, optimisers and schedulers, data sets and loaders, and the Keras-like Model
// API. Area headers (kiln/text/..., kiln/vision/..., kiln/onnx/...) are included by name.
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/gradcheck.h"
#include "kiln/autograd/tensor.h"
#include "kiln/data/columns.h"
#include "kiln/data/csv.h"
#include "kiln/data/dataloader.h"
#include "kiln/data/dataset.h"
#include "kiln/data/label_encoding.h"
#include "kiln/data/normalize.h"
#include "kiln/data/split.h"
#include "kiln/nn/nn.h"
#include "kiln/optim/optim.h"
#include "kiln/tensor/backend.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/io.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/random.h"
#include "kiln/train/train.h"
