// The torch header set every lmt target precompiles (see cmake/LmtRoom.cmake).
// Policy: sources include only the narrow torch headers they use (ATen, torch/nn/module.h,
// the specific modules/optimizers); <torch/torch.h> is never included. This file lists the
// union so one precompiled header serves the whole build.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/optim/adam.h>
#include <torch/serialize.h>
