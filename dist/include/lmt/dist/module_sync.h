// Start-up agreement of a model across ranks: same parameter and buffer names, shapes and
// dtypes everywhere (first mismatch named with its rank), then rank 0's values everywhere.
#pragma once

#include <lmt/dist/communicator.h>
#include <torch/nn/module.h>

namespace lmt::dist {

// Collective. Throws DistError on every rank when the modules differ, e.g.
// "rank 1: parameter 'fc.weight' has shape [10, 100], rank 0 has [10, 50]"; otherwise
// overwrites every parameter and buffer with rank 0's (one broadcast per dtype).
void verify_and_broadcast(Communicator& comm, torch::nn::Module& module);

}  // namespace lmt::dist
