#pragma once
// KILN_ARG, the fluent option macro (defined once, in kiln/autograd/options.h).
#include "kiln/autograd/options.h"
