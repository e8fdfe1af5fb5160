#pragma once
// The umbrella header a training script includes: tensors, autograd and every op.
#include "kiln/autograd/functions.h"
#include "kiln/autograd/gradcheck.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/tensor.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/io.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/random.h"
