#pragma once
// Everything in kiln::optim: optimisers, LR schedulers, gradient clipping.
#include "kiln/optim/adagrad.h"
#include "kiln/optim/adam.h"
#include "kiln/optim/clip_grad.h"
#include "kiln/optim/factory.h"
#include "kiln/optim/optimizer.h"
#include "kiln/optim/rmsprop.h"
#include "kiln/optim/scheduler.h"
#include "kiln/optim/sgd.h"
